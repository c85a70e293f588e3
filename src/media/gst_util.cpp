#include "gst_util.h"

#include <stdexcept>

#include "tessera/protocol/error.h"

GST_DEBUG_CATEGORY(tessera_media_debug);

namespace tessera::media {

void runAsync(std::function<void()> fn) {
    // GLib's shared pool rather than gst_element_call_async(): that holds a
    // reference to its element until after the work and its cleanup, so a
    // peer bin's last reference (its webrtcbin, buffers, ICE agent) went on a
    // pool thread after the room had been told the teardown was done, and
    // after the trim that gives a closed room's memory back.
    static GThreadPool* const pool = g_thread_pool_new(
        [](gpointer data, gpointer) noexcept {
            // Thread: the pool.
            std::unique_ptr<std::function<void()>> work(static_cast<std::function<void()>*>(data));
            glib::guarded("async task", *work);
        },
        nullptr, -1, FALSE, nullptr);
    GError* error = nullptr;
    // On error (no new thread) the work stays queued for a pool thread.
    g_thread_pool_push(pool, new std::function<void()>(std::move(fn)), &error);
    if (error) {
        GST_CAT_WARNING(tessera_media_debug, "async task queued: %s", error->message);
        g_error_free(error);
    }
}

PendingWork::Token PendingWork::hold() {
    {
        std::lock_guard lock(m_state->mutex);
        ++m_state->held;
    }
    // The deleter runs when the last copy of the token goes, on whichever thread drops it.
    return Token(nullptr, [state = m_state](void*) noexcept {
        std::lock_guard lock(state->mutex);
        if (--state->held == 0) state->idle.notify_all();
    });
}

bool PendingWork::waitIdle(std::chrono::milliseconds bound) {
    std::unique_lock lock(m_state->mutex);
    return m_state->idle.wait_for(lock, bound, [&] { return m_state->held == 0; });
}

void isolateFlow(GstPad* ghost) {
    // Thread: streaming (both functions). GStreamer C calls only: nothing throws.
    gst_pad_set_chain_function(ghost, [](GstPad* p, GstObject* parent, GstBuffer* buffer) noexcept {
        GstFlowReturn r = gst_proxy_pad_chain_default(p, parent, buffer);
        if (r != GST_FLOW_OK) GST_CAT_LOG_OBJECT(tessera_media_debug, p, "isolated flow %s", gst_flow_get_name(r));
        return GST_FLOW_OK;
    });
    gst_pad_set_chain_list_function(ghost, [](GstPad* p, GstObject* parent, GstBufferList* list) noexcept {
        gst_proxy_pad_chain_list_default(p, parent, list);
        return GST_FLOW_OK;
    });
}

GstPad* ghostPad(GstElement* bin, GstPad* target, bool isolate) {
    // The target is set last: gst_ghost_pad_new(target) links a live source
    // to a ghost that is still inactive, and a buffer pushed in that window
    // fails its sticky events with FLOW_ERROR, which stops the source's
    // whole stream (a stayer's tee when a joiner was linked to it). Active
    // and in its bin, an unlinked ghost only answers NOT_LINKED.
    GstPad* pad = gst_ghost_pad_new_no_target(nullptr, gst_pad_get_direction(target));
    if (isolate) isolateFlow(pad);
    gst_pad_set_active(pad, TRUE);
    gst_element_add_pad(bin, pad);
    gst_ghost_pad_set_target(GST_GHOST_PAD(pad), target);
    return pad;
}

GstElement* make(const char* factory) {
    GstElement* e = gst_element_factory_make(factory, nullptr);
    if (!e) throw Error(ErrorCode::Internal, std::string("missing GStreamer element ") + factory);
    return e;
}

GstElement* leakyQueue(guint buffers) {
    GstElement* q = make("queue");
    g_object_set(q, "leaky", 2 /* downstream */, "max-size-buffers", buffers, "max-size-bytes", 0, "max-size-time",
                 G_GUINT64_CONSTANT(0), nullptr);
    return q;
}

void answerCapsAt(GstElement* tee, GstCaps* caps) {
    GstPad* sink = gst_element_get_static_pad(tee, "sink");
    gst_pad_add_probe(
        sink, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer data) noexcept {
            // Thread: any (whoever queries).
            auto* fixed = static_cast<GstCaps*>(data);
            GstQuery* query = GST_PAD_PROBE_INFO_QUERY(info);
            if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS) {
                GstCaps* filter = nullptr;
                gst_query_parse_caps(query, &filter);
                GstCaps* result =
                    filter ? gst_caps_intersect_full(filter, fixed, GST_CAPS_INTERSECT_FIRST) : gst_caps_ref(fixed);
                gst_query_set_caps_result(query, result);
                gst_caps_unref(result);
                return GST_PAD_PROBE_HANDLED;
            }
            if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS) {
                GstCaps* offered = nullptr;
                gst_query_parse_accept_caps(query, &offered);
                gst_query_set_accept_caps_result(query, gst_caps_is_subset(offered, fixed));
                return GST_PAD_PROBE_HANDLED;
            }
            return GST_PAD_PROBE_OK;
        },
        gst_caps_ref(caps), [](gpointer d) noexcept { gst_caps_unref(static_cast<GstCaps*>(d)); });
    gst_object_unref(sink);
}

ElementRef requireByName(GstBin* bin, const char* name) {
    GstElement* e = gst_bin_get_by_name(bin, name);
    if (!e) throw Error(ErrorCode::Internal, std::string("pipeline has no element named '") + name + "'");
    return ElementRef::adopt(e);
}

unsigned countElements(GstBin* bin, const char* factory) {
    unsigned n = 0;
    GstIterator* it = gst_bin_iterate_recurse(bin);
    GValue item = G_VALUE_INIT;
    bool done = false;
    while (!done) {
        switch (gst_iterator_next(it, &item)) {
        case GST_ITERATOR_OK: {
            GstElementFactory* made = gst_element_get_factory(GST_ELEMENT(g_value_get_object(&item)));
            if (!factory || (made && g_strcmp0(GST_OBJECT_NAME(made), factory) == 0)) ++n;
            g_value_reset(&item);
            break;
        }
        case GST_ITERATOR_RESYNC:
            n = 0;
            gst_iterator_resync(it);
            break;
        default: done = true;
        }
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    return n;
}

unsigned countElements(GstBin* bin) { return countElements(bin, nullptr); }

void dumpDot(GstBin* bin, const std::string& name) {
    GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS(bin, GST_DEBUG_GRAPH_SHOW_ALL, name.c_str());
}

} // namespace tessera::media
