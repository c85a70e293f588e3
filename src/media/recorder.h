#pragma once
// A room's recorder: one bin (pipelines/record-<format>.pipeline plus two
// leaky entry queues) fed by the room's raw-video tee (the composite before
// the shared encoder) and its full-mix audio tee. Attached and detached while
// the room runs, like a peer: its entry pads are isolated (a failing recorder
// never returns an error to the tees), tee pads are released in IDLE probes,
// and the bin reaches NULL before it is removed.
//
//   rawtee  ─► queue (leaky) ─► video: scale ! encode ─┐
//   fullmix ─► queue (leaky) ─► audio: encode ─────────┴► sink (splitmuxsink) ─► file(s)
#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "gst_util.h"
#include "tessera/media/engine.h"
#include "tessera/policy/cut.h"

namespace tessera::media {

class RoomPipeline;

class Recorder {
public:
    // Thread: main. Builds the bin and links it to the tees; throws Error.
    Recorder(RoomPipeline& room, const RecordingRequest& request);
    // Removes the bin at once if it is still there (no finalisation).
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

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
    // Thread: main. Detaches (if not yet), sets the bin to NULL and removes
    // it; `then` runs on the main context once that is done.
    void remove(std::function<void()> then);
    // Seconds of video written so far.
    double duration() const;
    // Whether any video reached the muxer (a stop before that has nothing to finalise).
    bool wroteVideo() const;
    // Seconds from the start of the recording to a running time (0 if unknown).
    double offsetOf(GstClockTime runningTime) const;

private:
    // Thread: main. Releases the tee pads when idle (then, with `eos`, sends
    // EOS into the bin); `then` runs on the main context after both are.
    void detach(bool eos, std::function<void()> then);
    static gchar* formatLocation(GstElement* sink, guint fragment, gpointer self) noexcept;
    std::string segmentPath(guint fragment) const;

    RoomPipeline& m_room; // Borrowed; outlives this.
    const std::string m_directory, m_stem, m_extension;
    const bool m_segmented;
    std::string m_firstFile;
    ElementRef m_bin;                    // Owned; in the room's pipeline while attached.
    ElementRef m_sink;                   // Owned by m_bin.
    PadRef m_videoTeePad, m_audioTeePad; // request pads of the room's tees
    PadRef m_videoEntry, m_audioEntry;   // the bin's ghost sink pads
    bool m_stopping = false;
    bool m_detaching = false;
    bool m_detached = false;
    // Posted work checks it: this may be gone by the time it runs.
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);

    // Timestamps seen by a pad: written on its streaming thread.
    struct Span {
        mutable std::mutex mutex;
        GstClockTime first = GST_CLOCK_TIME_NONE;
        GstClockTime end = GST_CLOCK_TIME_NONE;
    };
    static GstPadProbeReturn trackSpan(GstPad* pad, GstPadProbeInfo* info, gpointer span) noexcept;
    Span m_written; // encoded video into the muxer

    // Where the recording starts and ends, in running time, the same for
    // both streams: the entry pads drop what lies outside.
    mutable std::mutex m_cutMutex;
    policy::AvCut m_cut; // Guarded by m_cutMutex.
    struct Gate {
        Recorder* recorder = nullptr;
        policy::AvCut::Stream stream = policy::AvCut::Video;
    };
    std::array<Gate, 2> m_gates; // probe data of the entry pads
    static GstPadProbeReturn gateThunk(GstPad* pad, GstPadProbeInfo* info, gpointer gate) noexcept;
    // Thread: streaming.
    GstPadProbeReturn onGate(policy::AvCut::Stream stream, GstPad* pad, GstBuffer* buffer);

    std::vector<SignalConnection> m_signals; // Last: disconnected first.
};

} // namespace tessera::media
