// AscendC twin: GlobalTensor (GM, bounds-checked) and LocalTensor (a view of a TPipe buffer,
// checked for bounds, for use after FreeTensor and for access while it sits in a queue).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_TENSOR_H
#define CANN_ATTENTION_ASCENDC_TWIN_TENSOR_H

#include "base.h"
#include "numeric.h"

namespace AscendC {
namespace twin {

template <typename T> const char* TypeName() { return "T"; }
template <> inline const char* TypeName<half>() { return "half"; }
template <> inline const char* TypeName<bfloat16_t>() { return "bfloat16_t"; }
template <> inline const char* TypeName<float>() { return "float"; }
template <> inline const char* TypeName<double>() { return "double"; }
template <> inline const char* TypeName<int8_t>() { return "int8_t"; }
template <> inline const char* TypeName<uint8_t>() { return "uint8_t"; }
template <> inline const char* TypeName<int16_t>() { return "int16_t"; }
template <> inline const char* TypeName<uint16_t>() { return "uint16_t"; }
template <> inline const char* TypeName<int32_t>() { return "int32_t"; }
template <> inline const char* TypeName<uint32_t>() { return "uint32_t"; }
template <> inline const char* TypeName<int64_t>() { return "int64_t"; }
template <> inline const char* TypeName<uint64_t>() { return "uint64_t"; }

// One buffer that TPipe::InitBuffer carved out of a local memory (a TQue holds `num` of them).
struct BufferRecord {
    enum class State { kFree, kAllocated, kEnqueued, kDequeued, kTBuf, kReleased };
    uint8_t* data = nullptr;       // host storage of the buffer
    TPosition position = TPosition::VECCALC;
    Memory memory = Memory::UB;
    uint32_t address = 0;          // byte offset of the buffer in its memory
    uint32_t length = 0;           // bytes (InitBuffer's len rounded up to 32 B)
    State state = State::kFree;
    uint64_t generation = 0;       // bumped by FreeTensor: older tensors of the buffer are stale
    std::string owner;             // "TQue<VECIN, 2> buffer 1 of 2"
};

}  // namespace twin

// ---- GlobalTensor ---------------------------------------------------------------------------------
template <typename T>
class GlobalTensor {
public:
    using PrimType = T;

    // bufferSize: elements of T the tensor may access (SetGlobalBuffer page).
    __aicore__ inline void SetGlobalBuffer(__gm__ T* buffer, uint64_t bufferSize)
    {
        base_ = buffer;
        size_ = bufferSize;
        sized_ = true;
    }

    // Without a size the tensor reaches to the end of the kernel argument (GM buffer) it lies in.
    __aicore__ inline void SetGlobalBuffer(__gm__ T* buffer)
    {
        base_ = buffer;
        size_ = 0;
        sized_ = false;
    }

    __aicore__ inline uint64_t GetSize() const { return sized_ ? size_ : 0; }
    __aicore__ inline __gm__ T* GetPhyAddr() const { return base_; }
    __aicore__ inline __gm__ T* GetPhyAddr(uint64_t offset) const { return base_ + offset; }

    __aicore__ inline T GetValue(uint64_t offset) const
    {
        return *twin_span(offset, 1, "GlobalTensor::GetValue");
    }

    __aicore__ inline void SetValue(uint64_t offset, const T& value) const
    {
        *twin_span(offset, 1, "GlobalTensor::SetValue") = value;
    }

    // A view starting `offset` elements further (its size shrinks by as much).
    __aicore__ inline GlobalTensor operator[](uint64_t offset) const
    {
        twin_check_set("GlobalTensor::operator[]");
        if (sized_ && offset > size_) {
            twin::Fail("GlobalTensor::operator[]: offset ", offset, " is beyond the end of ",
                       twin_name(), " (size ", size_, " elements)");
        }
        GlobalTensor view = *this;
        view.base_ = base_ + offset;
        view.size_ = sized_ ? size_ - offset : 0;
        return view;
    }

    // The twin's checked access: elements [first, first + count) of this tensor, as a pointer.
    T* twin_span(uint64_t first, uint64_t count, const char* api) const
    {
        twin_check_set(api);
        const twin::GmRegion* region = twin_region();
        const uint64_t end = first + count;
        if (sized_ && end > size_) {
            twin::Fail(api, ": elements [", first, ", ", end, ") are out of bounds of ",
                       twin_name(), " (size ", size_, " elements)");
        }
        if (count == 0) {
            return base_ + first;
        }
        if (region != nullptr) {
            const auto* lo = reinterpret_cast<const uint8_t*>(base_ + first);
            const auto* hi = reinterpret_cast<const uint8_t*>(base_ + end);
            if (hi > region->begin + region->bytes || lo < region->begin) {
                twin::Fail(api, ": elements [", first, ", ", end, ") of ", twin_name(),
                           " lie outside GM buffer '", region->name, "' (", region->bytes,
                           " B = ", region->bytes / sizeof(T), " elements)");
            }
        } else if (!twin::Core().gm.empty()) {
            twin::Fail(api, ": ", twin_name(), " lies in none of the GM buffers of the launch");
        } else if (!sized_) {
            twin::Fail(api, ": ", twin_name(), " was set without a size and the launch names no "
                       "GM buffers, so its bounds are unknown");
        }
        return base_ + first;
    }

    // "GlobalTensor<float> 'x'[+256]" (the kernel argument it lies in and where), for messages.
    std::string twin_name() const
    {
        const twin::GmRegion* region = twin_region();
        if (region == nullptr) {
            return twin::Str("GlobalTensor<", twin::TypeName<T>(), "> at ",
                             static_cast<const void*>(base_));
        }
        const auto skip = reinterpret_cast<const uint8_t*>(base_) - region->begin;
        return twin::Str("GlobalTensor<", twin::TypeName<T>(), "> '", region->name, "'[+",
                         skip / static_cast<std::ptrdiff_t>(sizeof(T)), "]");
    }

private:
    void twin_check_set(const char* api) const
    {
        if (base_ == nullptr) {
            twin::Fail(api, ": GlobalTensor<", twin::TypeName<T>(), "> used before SetGlobalBuffer");
        }
    }

    const twin::GmRegion* twin_region() const
    {
        const auto* p = reinterpret_cast<const uint8_t*>(base_);
        for (const twin::GmRegion& region : twin::Core().gm) {
            if (p >= region.begin && p < region.begin + region.bytes) {
                return &region;
            }
        }
        return nullptr;
    }

    T* base_ = nullptr;
    uint64_t size_ = 0;
    bool sized_ = false;
};

// ---- LocalTensor ----------------------------------------------------------------------------------
template <typename T>
class LocalTensor {
public:
    using PrimType = T;

    LocalTensor() = default;

    __aicore__ inline uint32_t GetSize() const { return size_; }
    __aicore__ inline uint32_t GetLength() const { return size_ * sizeof(T); }   // bytes
    __aicore__ inline TPosition GetPosition() const
    {
        twin_live("LocalTensor::GetPosition");
        return buffer_->position;
    }

    __aicore__ inline T GetValue(uint32_t index) const
    {
        return *twin_data(index, 1, "LocalTensor::GetValue");
    }

    __aicore__ inline void SetValue(uint32_t index, const T& value) const
    {
        *twin_data(index, 1, "LocalTensor::SetValue") = value;
    }

    __aicore__ inline T& operator()(uint32_t index) const
    {
        return *twin_data(index, 1, "LocalTensor::operator()");
    }

    // A view starting `offset` elements further (its size shrinks by as much).
    __aicore__ inline LocalTensor operator[](uint32_t offset) const
    {
        twin_live("LocalTensor::operator[]");
        if (offset > size_) {
            twin::Fail("LocalTensor::operator[]: offset ", offset, " is beyond the end of ",
                       twin_name());
        }
        LocalTensor view = *this;
        view.byteOffset_ += offset * sizeof(T);
        view.size_ -= offset;
        return view;
    }

    template <typename U>
    __aicore__ inline LocalTensor<U> ReinterpretCast() const
    {
        twin_live("LocalTensor::ReinterpretCast");
        return LocalTensor<U>(buffer_, generation_, byteOffset_,
                              static_cast<uint32_t>(size_ * sizeof(T) / sizeof(U)));
    }

    // ---- the twin's side (used by TQue, TBuf, DataCopy and the vector operations) ----------------
    LocalTensor(std::shared_ptr<twin::BufferRecord> buffer, uint64_t generation, uint32_t byteOffset,
                uint32_t size)
        : buffer_(std::move(buffer)), generation_(generation), byteOffset_(byteOffset), size_(size)
    {}

    // Elements [first, first + count) of this tensor, after every check, as a pointer.
    T* twin_data(uint64_t first, uint64_t count, const char* api) const
    {
        twin_live(api);
        if (first + count > size_) {
            twin::Fail(api, ": elements [", first, ", ", first + count, ") are out of bounds of ",
                       twin_name());
        }
        return reinterpret_cast<T*>(buffer_->data + byteOffset_) + first;
    }

    void twin_live(const char* api) const
    {
        using State = twin::BufferRecord::State;
        if (!buffer_) {
            twin::Fail(api, ": LocalTensor<", twin::TypeName<T>(), "> has no buffer (take it from "
                       "AllocTensor, DeQue or TBuf::Get)");
        }
        if (buffer_->state == State::kReleased) {
            twin::Fail(api, ": ", twin_name(), " is used after its TPipe was reset or destroyed");
        }
        if (generation_ != buffer_->generation || buffer_->state == State::kFree) {
            twin::Fail(api, ": ", twin_name(), " is used after FreeTensor released its buffer");
        }
        if (buffer_->state == State::kEnqueued) {
            twin::Fail(api, ": ", twin_name(), " is used while it sits in its queue (between "
                       "EnQue and DeQue)");
        }
    }

    // Bytes from the start of its memory (UB, L1, ...): what the alignment rules are about.
    uint32_t twin_address() const { return buffer_->address + byteOffset_; }
    twin::Memory twin_memory() const { return buffer_->memory; }
    const std::shared_ptr<twin::BufferRecord>& twin_buffer() const { return buffer_; }
    uint32_t twin_byte_offset() const { return byteOffset_; }
    uint64_t twin_generation() const { return generation_; }

    // "LocalTensor<float> of TQue<VECIN, 2> buffer 1 of 2 (UB byte 4096, 1024 elements)".
    std::string twin_name() const
    {
        if (!buffer_) {
            return twin::Str("LocalTensor<", twin::TypeName<T>(), "> (no buffer)");
        }
        return twin::Str("LocalTensor<", twin::TypeName<T>(), "> of ", buffer_->owner, " (",
                         twin::Info(buffer_->memory).name, " byte ", twin_address(), ", ", size_,
                         " elements)");
    }

private:
    std::shared_ptr<twin::BufferRecord> buffer_;
    uint64_t generation_ = 0;
    uint32_t byteOffset_ = 0;
    uint32_t size_ = 0;
};

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_TENSOR_H
