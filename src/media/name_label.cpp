#include "name_label.h"

#include <algorithm>

#include "gst_util.h"
#include "tessera/glib/raii.h"

namespace tessera::media {

namespace {

// The label is sized to its tile, so it keeps its proportion in any layout:
// at 360 pixels, Sans Bold 18, readable in a 2x2 grid and still legible in a
// 5x5 one.
void style(GstElement* label, unsigned tileHeight) {
    const std::string font = "Sans Bold " + std::to_string(std::max(4u, tileHeight / 20));
    g_object_set(label, "font-desc", font.c_str(), "xpad", static_cast<gint>(tileHeight / 30), "ypad",
                 static_cast<gint>(tileHeight / 36), nullptr);
}

using Pending = std::shared_ptr<std::atomic<unsigned>>;

// Thread: the label's streaming thread, before textoverlay's chain function:
// nothing renders while the font changes.
GstPadProbeReturn applyPending(GstPad* pad, GstPadProbeInfo*, gpointer data) noexcept {
    if (const unsigned height = (*static_cast<Pending*>(data))->exchange(0))
        style(GST_ELEMENT(GST_PAD_PARENT(pad)), height);
    return GST_PAD_PROBE_OK;
}

} // namespace

NameLabel::NameLabel(const std::string& name, unsigned tileHeight)
    : m_element(glib::ElementRef::sink(make("textoverlay"))) {
    GstElement* label = m_element.get();
    const glib::GCharPtr text(g_markup_escape_text(name.c_str(), -1));
    g_object_set(label, "text", text.get(), "silent", TRUE, "shaded-background", TRUE, "wait-text", FALSE, nullptr);
    gst_util_set_object_arg(G_OBJECT(label), "valignment", "bottom");
    gst_util_set_object_arg(G_OBJECT(label), "halignment", "left");
    style(label, tileHeight);
    GstPad* sink = gst_element_get_static_pad(label, "video_sink");
    gst_pad_add_probe(sink, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      applyPending, new Pending(m_pending),
                      [](gpointer d) noexcept { delete static_cast<Pending*>(d); });
    gst_object_unref(sink);
}

void NameLabel::resize(unsigned tileHeight) { m_pending->store(std::max(1u, tileHeight)); }

void NameLabel::show(bool shown) {
    if (shown == m_shown) return;
    m_shown = shown;
    g_object_set(m_element.get(), "silent", shown ? FALSE : TRUE, nullptr);
}

} // namespace tessera::media
