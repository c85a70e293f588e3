#pragma once
// A room's live stream (docs/architecture.md, "Live streaming"): one encode
// of the composite and the full mix, as the recorder taps them, shared by
// every target. The encoder is a Branch off the room's tees
// (pipelines/live-encode.pipeline, ending in the tees `video_out` and
// `audio_out`); each target is a Branch inside the encoder's bin, off those
// tees (pipelines/live-hls.pipeline: hlssink2; live-rtmp.pipeline: flvmux !
// rtmp2sink). A target's error removes only that target.
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
    // Thread: main. Detaches and removes the target; false when it is not attached.
    bool remove(const std::string& id);
    std::size_t size() const { return m_targets.size(); }
    // Thread: main. Before the room's pipeline stops (see Branch::isolate).
    void isolate();
    // Thread: main. Takes the encoder (and any target left) out of the room's
    // pipeline; `then` runs on the main context once it reached NULL.
    void close(std::function<void()> then);

    bool owns(GstMessage* message) const { return m_encoder->owns(message); }
    // Thread: main. A bus message from inside (owns()): an error removes the
    // target it comes from, or every target when it comes from the encoder.
    // Returns the failed targets' ids and reasons.
    std::vector<std::pair<std::string, std::string>> onMessage(GstMessage* message);

private:
    // Thread: main. Takes the target's branch out; forgotten once it is NULL.
    void retire(std::unique_ptr<Branch> branch);

    RoomPipeline& m_room;                                     // Borrowed; outlives this.
    std::unique_ptr<Branch> m_encoder;                        // Owned; in the room's pipeline until closed.
    ElementRef m_videoOut, m_audioOut;                        // the encoder's output tees, in its bin
    std::map<std::string, std::unique_ptr<Branch>> m_targets; // attached, by id
    std::vector<std::unique_ptr<Branch>> m_retiring;          // targets on their way out
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
};

} // namespace tessera::media
