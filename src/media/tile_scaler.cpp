#include "tile_scaler.h"

namespace tessera::media {

namespace {

// A pending setting in one word, so that the probe reads a size and its
// aspect from the same call: the width and height in 24 bits each (a tile
// is never wider than the canvas), keepAspect, and a bit saying it is set.
constexpr std::uint64_t kSet = std::uint64_t{1} << 49;
constexpr std::uint64_t kKeepAspect = std::uint64_t{1} << 48;
constexpr std::uint64_t kMask = (std::uint64_t{1} << 24) - 1;

struct Probe {
    std::shared_ptr<std::atomic<std::uint64_t>> pending;
    GstElement* tile; // a reference
};

// Thread: the branch's streaming thread, before the videoscale's chain
// function, which then renegotiates for this very frame.
GstPadProbeReturn applyPending(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    auto* probe = static_cast<Probe*>(data);
    const std::uint64_t next = probe->pending->exchange(0);
    if (!next) return GST_PAD_PROBE_OK;
    g_object_set(GST_PAD_PARENT(pad), "add-borders", (next & kKeepAspect) ? TRUE : FALSE, nullptr);
    resizeCaps(probe->tile, static_cast<unsigned>((next >> 24) & kMask), static_cast<unsigned>(next & kMask));
    return GST_PAD_PROBE_OK;
}

} // namespace

void resizeCaps(GstElement* filter, unsigned width, unsigned height) {
    GstCaps* caps = nullptr;
    g_object_get(filter, "caps", &caps, nullptr);
    GstCaps* resized = gst_caps_copy(caps);
    gst_caps_set_simple(resized, "width", G_TYPE_INT, static_cast<int>(width), "height", G_TYPE_INT,
                        static_cast<int>(height), nullptr);
    g_object_set(filter, "caps", resized, nullptr);
    gst_caps_unref(resized);
    gst_caps_unref(caps);
}

TileScaler::TileScaler(GstElement* scale, GstElement* tile) {
    GstPad* sink = gst_element_get_static_pad(scale, "sink");
    gst_pad_add_probe(sink, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      applyPending, new Probe{m_pending, GST_ELEMENT(gst_object_ref(tile))}, [](gpointer d) noexcept {
                          auto* probe = static_cast<Probe*>(d);
                          gst_object_unref(probe->tile);
                          delete probe;
                      });
    gst_object_unref(sink);
}

void TileScaler::set(unsigned width, unsigned height, bool keepAspect) {
    if (width == m_width && height == m_height && keepAspect == m_keepAspect) return;
    m_width = width;
    m_height = height;
    m_keepAspect = keepAspect;
    m_pending->store(kSet | (keepAspect ? kKeepAspect : 0) | ((std::uint64_t{width} & kMask) << 24) |
                     (std::uint64_t{height} & kMask));
}

} // namespace tessera::media
