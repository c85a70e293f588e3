#include "branch.h"

#include "tessera/protocol/error.h"

#define GST_CAT_DEFAULT tessera_media_debug

namespace tessera::media {
namespace {

// One tee pad to release when idle, then (optionally) EOS into the entry it fed.
struct IdleRelease {
    ElementRef tee;
    PadRef entry;
    bool eos = false;
    std::function<void()> done; // posted to the main context
};

// Thread: the tee's streaming thread, or the caller's when already idle.
GstPadProbeReturn releaseIdle(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    auto* r = static_cast<IdleRelease*>(data);
    if (!r->done) return GST_PAD_PROBE_REMOVE; // ran already (an IDLE probe may fire twice while being removed)
    glib::guarded("branch release probe", [&] {
        if (GstPad* peer = gst_pad_get_peer(pad)) {
            gst_pad_unlink(pad, peer);
            gst_object_unref(peer);
        }
        gst_element_release_request_pad(r->tee.get(), pad);
        // Only into the branch's bin: the parent's streams never see this EOS.
        if (r->eos) gst_pad_send_event(r->entry.get(), gst_event_new_eos());
        post(std::move(r->done));
        r->done = nullptr;
    });
    return GST_PAD_PROBE_REMOVE;
}

} // namespace

Branch::Branch(GstBin* parent, ElementRef bin) : m_parent(parent), m_bin(std::move(bin)) {
    // A sink's EOS reaches the bus only as a forwarded message: the parent
    // keeps its own EOS until every sink has one.
    g_object_set(m_bin.get(), "message-forward", TRUE, nullptr);
}

Branch::~Branch() {
    *m_alive = false;
    if (!m_started || m_released) return;
    if (!m_detached) {
        for (const Input& input : m_inputs) {
            if (!input.teePad) continue;
            if (GstPad* peer = gst_pad_get_peer(input.teePad.get())) {
                gst_pad_unlink(input.teePad.get(), peer);
                gst_object_unref(peer);
            }
            gst_element_release_request_pad(input.tee.get(), input.teePad.get());
        }
    }
    release([] {});
}

GstPad* Branch::addInput(GstElement* tee, const char* first, guint64 maxTimeNs, const std::string& what) {
    GstBin* bin = GST_BIN(m_bin.get());
    GstElement* queue = make("queue");
    g_object_set(queue, "leaky", 2 /* downstream */, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time",
                 maxTimeNs, nullptr);
    gst_bin_add(bin, queue);
    ElementRef target = requireByName(bin, first);
    if (!gst_element_link(queue, target.get()))
        throw Error(ErrorCode::Internal, what + ": name=" + first + " does not take what the server feeds it");
    GstPad* sink = gst_element_get_static_pad(queue, "sink");
    PadRef ghost = PadRef::borrow(ghostPad(m_bin.get(), sink, true));
    gst_object_unref(sink);
    m_inputs.push_back({ElementRef::borrow(tee), {}, ghost});
    GstPad* src = gst_element_get_static_pad(queue, "src");
    gst_object_unref(src); // the queue holds it
    return src;
}

void Branch::start() {
    gst_bin_add(m_parent, m_bin.get());
    if (gst_element_sync_state_with_parent(m_bin.get()) == GST_STATE_CHANGE_FAILURE) {
        gst_element_set_state(m_bin.get(), GST_STATE_NULL);
        gst_bin_remove(m_parent, m_bin.get());
        throw Error(ErrorCode::Internal, std::string(GST_OBJECT_NAME(m_bin.get())) + " could not start (see the log)");
    }
    m_started = true;
    for (Input& input : m_inputs) {
        input.teePad = PadRef::adopt(gst_element_request_pad_simple(input.tee.get(), "src_%u"));
        if (gst_pad_link(input.teePad.get(), input.entry.get()) != GST_PAD_LINK_OK)
            GST_CAT_ERROR(tessera_media_debug, "cannot link %s to %s", GST_OBJECT_NAME(input.tee.get()),
                          GST_OBJECT_NAME(m_bin.get()));
    }
}

void Branch::isolate() {
    if (m_started && !m_released) gst_element_set_locked_state(m_bin.get(), TRUE);
}

bool Branch::owns(GstMessage* message) const {
    return m_started && !m_released &&
           (GST_MESSAGE_SRC(message) == GST_OBJECT(m_bin.get()) ||
            gst_object_has_as_ancestor(GST_MESSAGE_SRC(message), GST_OBJECT(m_bin.get())));
}

bool Branch::forwardedEos(GstMessage* message, GstElement* sink) const {
    if (GST_MESSAGE_TYPE(message) != GST_MESSAGE_ELEMENT || !gst_message_has_name(message, "GstBinForwarded"))
        return false;
    GstMessage* inner = nullptr;
    gst_structure_get(gst_message_get_structure(message), "message", GST_TYPE_MESSAGE, &inner, nullptr);
    if (!inner) return false;
    const bool eos = GST_MESSAGE_TYPE(inner) == GST_MESSAGE_EOS && GST_MESSAGE_SRC(inner) == GST_OBJECT(sink);
    gst_message_unref(inner);
    return eos;
}

void Branch::detach(bool eos, std::function<void()> then) {
    if (m_detached || m_detaching || m_inputs.empty()) {
        m_detached = m_detached || m_inputs.empty();
        post([alive = std::weak_ptr<bool>(m_alive), then = std::move(then)] {
            if (alive.lock()) then();
        });
        return;
    }
    m_detaching = true;
    // `then` runs once, after the last pad is released.
    auto remaining = std::make_shared<std::size_t>(m_inputs.size());
    auto done = [alive = std::weak_ptr<bool>(m_alive), this, remaining, then = std::move(then)] {
        if (!alive.lock() || --*remaining > 0) return;
        m_detached = true;
        then();
    };
    for (const Input& input : m_inputs) {
        auto* release = new IdleRelease{input.tee, input.entry, eos, done};
        gst_pad_add_probe(input.teePad.get(), GST_PAD_PROBE_TYPE_IDLE, releaseIdle, release,
                          [](gpointer data) noexcept { delete static_cast<IdleRelease*>(data); });
    }
}

void Branch::remove(std::function<void()> then) {
    detach(false, [this, then = std::move(then)]() mutable {
        release([alive = std::weak_ptr<bool>(m_alive), then = std::move(then)] {
            if (alive.lock()) then();
        });
    });
}

void Branch::release(std::function<void()> then) {
    // Removing does not wait for the bin's streaming threads (it only unlinks
    // and unparents); going NULL does, for a write in progress. That is left
    // to a pool thread, which a write that never returns blocks for good:
    // the room and the process go on and exit without it.
    if (m_released) return;
    m_released = true;
    gst_bin_remove(m_parent, m_bin.get());
    runAsync([bin = m_bin, then = std::move(then)] {
        gst_element_set_state(bin.get(), GST_STATE_NULL);
        post(then);
    });
}

} // namespace tessera::media
