#pragma once
// A room's live stream (docs/architecture.md, "Live streaming"): one encode
// of the composite and the full mix, as the recorder taps them, shared by
// every target. The encoder is a Branch off the room's tees
// (pipelines/live-encode.pipeline, ending in the tees `video_out` and
// `audio_out`); each target is a Branch inside the encoder's bin, off those
// tees (pipelines/live-hls.pipeline: hlssink2; live-rtmp.pipeline: flvmux !
// rtmp2sink). A target's error removes only that target. A stopped target
// ends its stream first: EOS through its muxer and sink (hlssink2 writes the
// last segment and #EXT-X-ENDLIST, flvmux its last tags), given up on after
// a bound so that a stuck sink never keeps it.
//
//   rawtee  ─► queue (leaky) ─► scale ! x264enc ─► video_out ─┬► target: queue ─► mux ─► sink
//   fullmix ─► queue (leaky) ─► avenc_aac ──────► audio_out ─┘
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "branch.h"
#include "gst_util.h"
#include "tessera/media/engine.h"

namespace tessera::media {

class RoomPipeline;

class LiveStream {
public:
    // Thread: main. Builds the encoder and attaches it to the room's tees; throws Error.
    explicit LiveStream(RoomPipeline& room);
    // Thread: main. With the room's pipeline stopped, or after close().
    ~LiveStream();
    LiveStream(const LiveStream&) = delete;
    LiveStream& operator=(const LiveStream&) = delete;

    // Thread: main. Attaches a target; throws Error(Internal) when it cannot start.
    void add(const LiveTarget& target);
    // Thread: main. Detaches the target and removes it once its stream ended
    // (or at once, without `drain`: a failed target); false when it is not attached.
    bool remove(const std::string& id, bool drain = true);
    std::size_t size() const { return m_targets.size(); }
    // Thread: main. Before the room's pipeline stops (see Branch::isolate).
    void isolate();
    // Thread: main. Once every stopped target's stream ended, takes the
    // encoder (and any target left) out of the room's pipeline; `then` runs
    // on the main context once it reached NULL, and not once this is gone.
    void close(std::function<void()> then);

    bool owns(GstMessage* message) const { return m_encoder->owns(message); }
    // Thread: main. A bus message from inside (owns()): an error removes the
    // target it comes from, or every target when it comes from the encoder.
    // Returns the failed targets' ids and reasons.
    std::vector<std::pair<std::string, std::string>> onMessage(GstMessage* message);

private:
    struct Target {
        std::unique_ptr<Branch> branch;
        ElementRef sink; // its last element (hlssink2, rtmp2sink), whose EOS ends the stream
    };
    struct Retiring {
        std::string id;
        Target target;
        guint timer = 0;       // the drain's bound, while it drains
        bool draining = false; // EOS sent, not yet out
    };
    // Thread: main. Detaches the target (with `drain`, sending EOS into it);
    // forgotten once it is NULL.
    void retire(const std::string& id, Target target, bool drain);
    // Thread: main. The target's stream ended (or will not): takes it out.
    void drained(Retiring* retiring);
    // Thread: main. Closes the encoder once close() was asked and nothing drains.
    void closeIfDrained();

    RoomPipeline& m_room;                              // Borrowed; outlives this.
    std::unique_ptr<Branch> m_encoder;                 // Owned; in the room's pipeline until closed.
    ElementRef m_videoOut, m_audioOut;                 // the encoder's output tees, in its bin
    std::map<std::string, Target> m_targets;           // attached, by id
    std::vector<std::unique_ptr<Retiring>> m_retiring; // targets on their way out
    std::function<void()> m_closed;                    // close()'s `then`, until the encoder goes
    bool m_closing = false;
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
};

} // namespace tessera::media
