#pragma once
// A tile's name label: the textoverlay drawing a participant's name on the
// tile's own frames (so it moves with the tile on every layout change at no
// extra cost), sized to the tile.
#include <atomic>
#include <memory>
#include <string>

#include <gst/gst.h>

#include "tessera/glib/gst_raii.h"

namespace tessera::media {

// textoverlay (GStreamer 1.22 and later) renders a fixed text outside its
// object lock, so a font set from another thread while a frame is drawn
// rewrites the Pango layout under it: a crash, seen in a room of 30 whose
// layout changed as people joined. A new size therefore goes to the label's
// own streaming thread, which applies it just before its next frame.
class NameLabel {
public:
    // Thread: any. A new textoverlay showing `name` as written (textoverlay
    // reads Pango markup: a name is client input, and "Tom & Jerry" would not
    // parse and show nothing, a <span> would restyle the picture), silent,
    // sized for a tile `tileHeight` pixels high.
    NameLabel(const std::string& name, unsigned tileHeight);

    GstElement* element() const { return m_element.get(); }
    // Thread: any. Sizes it for a tile `tileHeight` pixels high from its next frame.
    void resize(unsigned tileHeight);
    // Thread: the owner's (textoverlay reads `silent` under its lock). Sets
    // only a change: every property set makes textoverlay render its text
    // again, and a room shows or hides every label on each relayout.
    void show(bool shown);

private:
    glib::ElementRef m_element;
    bool m_shown = false;
    // The tile height the next frame applies; 0: none pending. Shared with the pad probe.
    std::shared_ptr<std::atomic<unsigned>> m_pending = std::make_shared<std::atomic<unsigned>>(0);
};

} // namespace tessera::media
