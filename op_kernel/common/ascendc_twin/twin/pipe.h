// AscendC twin: TPipe (the local memories of one core and its event ids), TQue / TQueBind
// (AllocTensor -> EnQue -> DeQue -> FreeTensor) and TBuf (Get).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_PIPE_H
#define CANN_ATTENTION_ASCENDC_TWIN_PIPE_H

#include <cstring>
#include <deque>

#include "tensor.h"

namespace AscendC {

class TPipe;

namespace twin {

constexpr int kMaxBuffersPerKernel = 64;   // InitBuffer page: all buffer nums of a kernel <= 64
constexpr uint8_t kPoison = 0xFF;          // fresh local memory: NaN in every float type

using Record = std::shared_ptr<BufferRecord>;

// What a TQueBind<src, dst, depth> does, without the templates.
class QueueCore {
public:
    QueueCore(TPosition src, TPosition dst, int32_t depth) : src_(src), dst_(dst), depth_(depth) {}

    // TPipe::InitBuffer(que, num, len) lands here.
    void twin_attach(TPipe& pipe, uint8_t num, uint32_t len);

    int32_t GetTensorCountInQue() const { return static_cast<int32_t>(fifo_.size()); }
    bool HasTensorInQue() const { return !fifo_.empty(); }
    bool VacantInQue() const { return depth_ <= 0 || static_cast<int32_t>(fifo_.size()) < depth_; }
    bool HasIdleBuffer() const
    {
        for (const Record& record : buffers_) {
            if (record->state == BufferRecord::State::kFree) return true;
        }
        return false;
    }

protected:
    std::string Label() const
    {
        return src_ == dst_ ? Str("TQue<", PositionName(src_), ", ", depth_, ">")
                            : Str("TQueBind<", PositionName(src_), ", ", PositionName(dst_), ", ",
                                  depth_, ">");
    }

    void CheckReady(const char* api) const
    {
        if (buffers_.empty()) {
            Fail(api, ": ", Label(), " has no buffers: call TPipe::InitBuffer on it first");
        }
        if (buffers_.front()->state == BufferRecord::State::kReleased) {
            Fail(api, ": ", Label(), " is used after its TPipe was reset or destroyed");
        }
    }

    // A free buffer, now allocated (round robin over the num buffers).
    const Record& Allocate(const char* api)
    {
        CheckReady(api);
        for (size_t tried = 0; tried < buffers_.size(); ++tried) {
            const Record& record = buffers_[(next_ + tried) % buffers_.size()];
            if (record->state == BufferRecord::State::kFree) {
                next_ = (next_ + tried + 1) % buffers_.size();
                record->state = BufferRecord::State::kAllocated;
                return record;
            }
        }
        Fail(api, ": all ", buffers_.size(), " buffers of ", Label(), " are in use; FreeTensor "
             "one first (on the device this AllocTensor would wait forever)");
    }

    // The buffer of `tensor`, which must be one of this queue's.
    template <typename T>
    const Record& Own(const LocalTensor<T>& tensor, const char* api) const
    {
        CheckReady(api);
        if (!tensor.twin_buffer()) {
            Fail(api, ": the LocalTensor has no buffer (take it from AllocTensor or DeQue)");
        }
        for (const Record& record : buffers_) {
            if (record == tensor.twin_buffer()) return record;
        }
        Fail(api, ": ", tensor.twin_name(), " does not belong to ", Label());
    }

    struct Entry {
        Record record;
        uint32_t byteOffset;
        uint32_t bytes;
    };

    TPosition src_;
    TPosition dst_;
    int32_t depth_;
    std::vector<Record> buffers_;
    std::deque<Entry> fifo_;
    size_t next_ = 0;
};

}  // namespace twin

// ---- TQueBind / TQue ------------------------------------------------------------------------------
template <TPosition src, TPosition dst, int32_t depth, auto mask = 0>
class TQueBind : public twin::QueueCore {
public:
    TQueBind() : QueueCore(src, dst, depth) {}
    TQueBind(const TQueBind&) = delete;
    TQueBind& operator=(const TQueBind&) = delete;

    template <typename T>
    __aicore__ inline LocalTensor<T> AllocTensor()
    {
        const twin::Record& record = Allocate("AllocTensor");
        return LocalTensor<T>(record, record->generation, 0,
                              static_cast<uint32_t>(record->length / sizeof(T)));
    }

    template <typename T>
    __aicore__ inline void AllocTensor(LocalTensor<T>& tensor) { tensor = AllocTensor<T>(); }

    template <typename T>
    __aicore__ inline bool EnQue(const LocalTensor<T>& tensor)
    {
        using State = twin::BufferRecord::State;
        const twin::Record& record = Own(tensor, "EnQue");
        tensor.twin_live("EnQue");
        if (record->state != State::kAllocated && record->state != State::kDequeued) {
            twin::Fail("EnQue: ", tensor.twin_name(), " was not allocated with AllocTensor");
        }
        if (depth > 0 && static_cast<int32_t>(fifo_.size()) >= depth) {
            twin::Fail("EnQue: ", Label(), " already holds ", fifo_.size(), " tensors, its depth; "
                       "DeQue one first");
        }
        record->state = State::kEnqueued;
        fifo_.push_back({record, tensor.twin_byte_offset(), tensor.GetLength()});
        return true;
    }

    template <typename T>
    __aicore__ inline LocalTensor<T> DeQue()
    {
        CheckReady("DeQue");
        if (fifo_.empty()) {
            twin::Fail("DeQue: ", Label(), " is empty (nothing was EnQue'd): on the device this "
                       "DeQue would wait forever");
        }
        Entry entry = fifo_.front();
        fifo_.pop_front();
        entry.record->state = twin::BufferRecord::State::kDequeued;
        return LocalTensor<T>(entry.record, entry.record->generation, entry.byteOffset,
                              static_cast<uint32_t>(entry.bytes / sizeof(T)));
    }

    template <typename T>
    __aicore__ inline void DeQue(LocalTensor<T>& tensor) { tensor = DeQue<T>(); }

    template <typename T>
    __aicore__ inline void FreeTensor(LocalTensor<T>& tensor)
    {
        using State = twin::BufferRecord::State;
        const twin::Record& record = Own(tensor, "FreeTensor");
        if (record->state == State::kFree || tensor.twin_generation() != record->generation) {
            twin::Fail("FreeTensor: ", tensor.twin_name(), " is already free (FreeTensor twice)");
        }
        if (record->state == State::kEnqueued) {
            twin::Fail("FreeTensor: ", tensor.twin_name(), " is still in its queue (DeQue it first)");
        }
        record->state = State::kFree;
        ++record->generation;
    }
};

template <TPosition pos, int32_t depth, auto mask = 0>
class TQue : public TQueBind<pos, pos, depth, mask> {};

// ---- TBuf -----------------------------------------------------------------------------------------
template <TPosition pos = TPosition::VECCALC>
class TBuf {
public:
    TBuf() = default;
    TBuf(const TBuf&) = delete;
    TBuf& operator=(const TBuf&) = delete;

    template <typename T>
    __aicore__ inline LocalTensor<T> Get() { return Get<T>(Ready("TBuf::Get")->length / sizeof(T)); }

    // The first `len` elements of the buffer.
    template <typename T>
    __aicore__ inline LocalTensor<T> Get(uint32_t len) { return GetWithOffset<T>(len, 0); }

    // `size` elements starting `bufOffset` bytes into the buffer.
    template <typename T>
    __aicore__ inline LocalTensor<T> GetWithOffset(uint32_t size, uint32_t bufOffset)
    {
        const twin::Record& record = Ready("TBuf::GetWithOffset");
        if (static_cast<uint64_t>(bufOffset) + static_cast<uint64_t>(size) * sizeof(T) >
            record->length) {
            twin::Fail("TBuf::Get: ", size, " elements of ", twin::TypeName<T>(), " at byte ",
                       bufOffset, " exceed ", record->owner, " (", record->length, " B)");
        }
        return LocalTensor<T>(record, record->generation, bufOffset, size);
    }

    void twin_attach(TPipe& pipe, uint32_t len);

private:
    const twin::Record& Ready(const char* api) const
    {
        if (!record_) {
            twin::Fail(api, ": TBuf<", twin::PositionName(pos), "> has no buffer: call "
                       "TPipe::InitBuffer on it first");
        }
        return record_;
    }

    twin::Record record_;
};

// ---- TPipe ----------------------------------------------------------------------------------------
class TPipe {
public:
    TPipe()
    {
        twin::CoreState& core = twin::RunningCore("TPipe");
        if (core.pipe != nullptr) {
            twin::Fail("TPipe: a second TPipe on this core; a kernel initialises exactly one TPipe");
        }
        core.pipe = this;
    }

    ~TPipe()
    {
        Release();
        twin::CoreState& core = twin::Core();
        if (core.pipe == this) core.pipe = nullptr;
    }

    TPipe(const TPipe&) = delete;
    TPipe& operator=(const TPipe&) = delete;

    template <class Queue>
    __aicore__ inline bool InitBuffer(Queue& que, uint8_t num, uint32_t len)
    {
        que.twin_attach(*this, num, len);
        return true;
    }

    template <TPosition bufPos>
    __aicore__ inline bool InitBuffer(TBuf<bufPos>& buf, uint32_t len)
    {
        buf.twin_attach(*this, len);
        return true;
    }

    // Frees every buffer of InitBuffer: they can be initialised again.
    __aicore__ inline void Reset() { Release(); }
    __aicore__ inline void Destroy() { Release(); }

    template <HardEvent event>
    __aicore__ inline TEventID AllocEventID()
    {
        twin::CoreState& core = twin::RunningCore("AllocEventID");
        for (int id = 0; id < twin::kEventIds; ++id) {
            uint8_t& taken = core.allocatedIds[static_cast<int>(event) * twin::kEventIds + id];
            if (!taken) {
                taken = 1;
                return static_cast<TEventID>(id);
            }
        }
        twin::Fail("AllocEventID<", twin::EventName(event), ">: all ", twin::kEventIds,
                   " event ids are taken (ReleaseEventID some)");
    }

    template <HardEvent event>
    __aicore__ inline void ReleaseEventID(TEventID id)
    {
        twin::CoreState& core = twin::RunningCore("ReleaseEventID");
        if (id < 0 || id >= twin::kEventIds ||
            !core.allocatedIds[static_cast<int>(event) * twin::kEventIds + id]) {
            twin::Fail("ReleaseEventID<", twin::EventName(event), ">(", int(id), "): the id was "
                       "not taken with AllocEventID");
        }
        core.allocatedIds[static_cast<int>(event) * twin::kEventIds + id] = 0;
    }

    // An id not taken by AllocEventID (not reserved either).
    template <HardEvent event>
    __aicore__ inline TEventID FetchEventID()
    {
        twin::CoreState& core = twin::RunningCore("FetchEventID");
        for (int id = 0; id < twin::kEventIds; ++id) {
            if (!core.allocatedIds[static_cast<int>(event) * twin::kEventIds + id]) {
                return static_cast<TEventID>(id);
            }
        }
        twin::Fail("FetchEventID<", twin::EventName(event), ">: all event ids are taken");
    }

    // ---- the twin's side ---------------------------------------------------------------------------
    // One buffer of `len` bytes (rounded up to 32 B) at `pos`, or the error naming what is full.
    twin::Record twin_allocate(TPosition pos, uint32_t len, const std::string& owner, const char* api)
    {
        const twin::Memory memory = twin::PhysicalMemory(pos, api);
        if (memory == twin::Memory::GM) {
            twin::Fail(api, ": ", owner, " is at ", twin::PositionName(pos), ", which is Global "
                       "Memory on A2/A3: TPipe allocates local memory only");
        }
        if (len == 0) {
            twin::Fail(api, ": ", owner, " asks for 0 bytes");
        }
        if (++buffers_ > twin::kMaxBuffersPerKernel) {
            twin::Fail(api, ": more than ", twin::kMaxBuffersPerKernel, " buffers in one kernel");
        }
        const twin::CoreState& core = twin::Core();
        const bool cubeMemory = memory != twin::Memory::UB;
        if ((core.kind == twin::CoreKind::kAIC && !cubeMemory) ||
            (core.kind == twin::CoreKind::kAIV && cubeMemory)) {
            twin::Fail(api, ": ", owner, " is at ", twin::PositionName(pos), " (",
                       twin::Info(memory).name, "), but this code runs on the ", core.label,
                       ", which has ", core.kind == twin::CoreKind::kAIC ? "L1, L0A, L0B and L0C"
                       : "UB", " only (separated architecture: the cube core holds L1/L0A/L0B/L0C, "
                       "each vector core its own UB)");
        }
        const twin::MemoryInfo& info = twin::Info(memory);
        Arena& arena = arenas_[static_cast<int>(memory)];
        const uint32_t start = twin::RoundUp(arena.used, info.alignment);
        const uint32_t bytes = twin::RoundUp(len, ONE_BLK_SIZE);
        if (static_cast<uint64_t>(start) + bytes > info.capacity) {
            twin::Fail(api, ": ", info.name, " overflow: ", owner, " needs ", bytes, " B at ",
                       twin::PositionName(pos), " but ", info.name, " holds ", info.capacity,
                       " B per core and ", start, " B are already taken by earlier InitBuffer calls");
        }
        if (!arena.bytes) {
            arena.bytes.reset(new uint8_t[info.capacity]);
            std::memset(arena.bytes.get(), twin::kPoison, info.capacity);
        }
        arena.used = start + bytes;
        auto record = std::make_shared<twin::BufferRecord>();
        record->data = arena.bytes.get() + start;
        record->position = pos;
        record->memory = memory;
        record->address = start;
        record->length = bytes;
        record->owner = owner;
        records_.push_back(record);
        return record;
    }

private:
    struct Arena {
        std::unique_ptr<uint8_t[]> bytes;
        uint32_t used = 0;
    };

    void Release()
    {
        for (const twin::Record& record : records_) {
            record->state = twin::BufferRecord::State::kReleased;
        }
        records_.clear();
        for (Arena& arena : arenas_) arena.used = 0;
        buffers_ = 0;
    }

    Arena arenas_[static_cast<int>(twin::Memory::COUNT)];
    std::vector<twin::Record> records_;
    int buffers_ = 0;
};

// ---- attaching queues and buffers to the pipe ---------------------------------------------------
inline void twin::QueueCore::twin_attach(TPipe& pipe, uint8_t num, uint32_t len)
{
    if (!buffers_.empty() && buffers_.front()->state != BufferRecord::State::kReleased) {
        Fail("TPipe::InitBuffer: ", Label(), " already has buffers (call TPipe::Reset before "
             "initialising it again)");
    }
    if (num == 0) {
        Fail("TPipe::InitBuffer: ", Label(), " with num = 0 buffers");
    }
    buffers_.clear();
    fifo_.clear();
    next_ = 0;
    const TPosition at = src_ == TPosition::GM ? dst_ : src_;
    for (int i = 0; i < num; ++i) {
        buffers_.push_back(pipe.twin_allocate(
            at, len, Str(Label(), " buffer ", i + 1, " of ", int(num)), "TPipe::InitBuffer"));
    }
}

template <TPosition pos>
inline void TBuf<pos>::twin_attach(TPipe& pipe, uint32_t len)
{
    if (record_ && record_->state != twin::BufferRecord::State::kReleased) {
        twin::Fail("TPipe::InitBuffer: TBuf<", twin::PositionName(pos), "> already has a buffer "
                   "(call TPipe::Reset before initialising it again)");
    }
    record_ = pipe.twin_allocate(pos, len, twin::Str("TBuf<", twin::PositionName(pos), ">"),
                                 "TPipe::InitBuffer");
    record_->state = twin::BufferRecord::State::kTBuf;
}

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_PIPE_H
