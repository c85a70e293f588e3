#pragma once
// What the files of PeerCore share (peer.h lists them): the weak pointers
// handed to C callbacks. Internal to src/media.
#include <memory>

#include "peer.h"

namespace tessera::media::peer_detail {

using WeakCore = std::weak_ptr<PeerCore>;

// Signal user data: a heap weak pointer freed with the closure, so a handler
// running on a streaming thread during teardown never sees a dangling core.
inline gpointer newWeak(const std::shared_ptr<PeerCore>& core) { return new WeakCore(core); }
inline void freeWeak(gpointer data, GClosure*) noexcept { delete static_cast<WeakCore*>(data); }
inline std::shared_ptr<PeerCore> lockWeak(gpointer data) { return static_cast<WeakCore*>(data)->lock(); }
inline const WeakCore& weakOf(gpointer data) { return *static_cast<WeakCore*>(data); }

// The event webrtcbin's RTP session sends upstream with every transport-cc
// feedback it gets, listing its packets (peer_branches.cpp stops it, peer_probe.cpp reads it).
inline bool isTransportCcPackets(GstEvent* event) {
    return GST_EVENT_TYPE(event) == GST_EVENT_CUSTOM_UPSTREAM && gst_event_has_name(event, "RTPTWCCPackets");
}

// A promise whose `done` gets a weak pointer to `core` as its user data.
inline GstPromise* newPromise(const std::shared_ptr<PeerCore>& core, void (*done)(GstPromise*, gpointer) noexcept) {
    return gst_promise_new_with_change_func(done, new WeakCore(core),
                                            [](gpointer d) noexcept { delete static_cast<WeakCore*>(d); });
}

} // namespace tessera::media::peer_detail
