#pragma once
// A room's recorder: a Branch (branch.h) of pipelines/record-<format>.pipeline
// fed by the room's raw-video tee (the composite before the shared encoder)
// and its full-mix audio tee, attached and detached while the room runs. It
// cuts both streams at the same running time (policy::AvCut).
//
//   rawtee  ─► queue (leaky) ─► video: scale ! encode ─┐
//   fullmix ─► queue (leaky) ─► audio: encode ─────────┴► sink (splitmuxsink) ─► file(s)
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "branch.h"
#include "gst_util.h"
#include "tessera/media/engine.h"
#include "tessera/policy/cut.h"

namespace tessera::media {

class RoomPipeline;

class Recorder {
public:
    // Thread: main. Builds the bin and links it to the tees; throws Error.
    Recorder(RoomPipeline& room, const RecordingRequest& request);
    // Thread: main, with the room's pipeline stopped. Takes the bin out at
    // once if it is still there (no finalisation).
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    // Thread: main. Before the room's pipeline stops: that then leaves the
    // bin running, and ~Recorder stops it without waiting for its writes.
    void isolate();
    // The path of the first (or only) file.
    const std::string& file() const { return m_firstFile; }
    bool stopping() const { return m_stopping; }
    // Whether the bus message comes from inside the recorder's bin.
    bool owns(GstMessage* message) const;

    // Thread: main. Detaches from the tees and sends EOS into the bin; the
    // room calls finish() when the EOS came out of the sink (eosReached).
    void stop();
    // Thread: main. A bus message from inside the bin: true when the
    // recording is complete (the sink's EOS after stop()).
    bool eosReached(GstMessage* message) const;
    // Thread: main. Detaches (if not yet) and takes the bin out of the room's
    // pipeline; `then` runs on the main context once the bin reached NULL (its
    // files are closed): never while a write blocks for good, and not once
    // this is gone.
    void remove(std::function<void()> then);
    // Seconds of video written so far.
    double duration() const;
    // Whether any video reached the muxer (a stop before that has nothing to finalise).
    bool wroteVideo() const;
    // Seconds from the start of the recording to a running time (0 if unknown).
    double offsetOf(GstClockTime runningTime) const;

private:
    // Timestamps seen by a pad: written on its streaming thread.
    struct Span {
        mutable std::mutex mutex;
        GstClockTime first = GST_CLOCK_TIME_NONE;
        GstClockTime end = GST_CLOCK_TIME_NONE;
    };
    // What the bin's streaming threads use. Its probes and signal handler
    // share it: the bin outlives this when its NULL blocks on a write, and
    // its threads run on once the write returns.
    struct Streams {
        std::string directory, stem, extension;
        bool segmented = false;
        std::string segmentPath(guint fragment) const;

        Span written; // encoded video into the muxer
        // Where the recording starts and ends, in running time, the same for
        // both streams: the entry pads drop what lies outside.
        mutable std::mutex cutMutex;
        policy::AvCut cut; // Guarded by cutMutex.
        // Both streams reached the end of the cut: detaches the recorder
        // (posted to the main context; nothing once it is gone).
        std::weak_ptr<bool> alive;
        Recorder* recorder = nullptr; // Only on the main context, while `alive`.

        // Thread: streaming.
        GstPadProbeReturn gate(policy::AvCut::Stream stream, GstPad* pad, GstBuffer* buffer);
    };
    struct Share;
    static GstPadProbeReturn gateThunk(GstPad* pad, GstPadProbeInfo* info, gpointer share) noexcept;
    static GstPadProbeReturn trackSpan(GstPad* pad, GstPadProbeInfo* info, gpointer share) noexcept;
    static gchar* formatLocation(GstElement* sink, guint fragment, gpointer share) noexcept;

    RoomPipeline& m_room; // Borrowed; outlives this.
    // Posted work checks it: this may be gone by the time it runs.
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
    std::shared_ptr<Streams> m_streams; // Shared with the bin's probes and sink.
    std::string m_firstFile;
    std::unique_ptr<Branch> m_branch; // Owned; its bin is in the room's pipeline until removed.
    ElementRef m_sink;                // Owned by the branch's bin.
    bool m_stopping = false;
};

} // namespace tessera::media
