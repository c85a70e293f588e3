#pragma once
// The size a video source's decode branch scales its frames to (its tile in
// the layout) and whether it letterboxes them.
#include <atomic>
#include <cstdint>
#include <memory>

#include <gst/gst.h>

namespace tessera::media {

// Sets the width and height in capsfilter `filter`'s caps; the rest stays.
void resizeCaps(GstElement* filter, unsigned width, unsigned height);

// The room sets a tile's size on the main thread; the branch's own streaming
// thread applies it just before its next frame, as NameLabel does its font.
// A capsfilter changed from another thread while the branch negotiated (its
// decoder's first caps, just as the room placed the new source) answered the
// negotiation's caps query with the old size on the way down and the new one
// on the way back: nothing fitted, the branch failed "not negotiated", and its
// flow error stopped the sender's transport (the peer failed).
class TileScaler {
public:
    // Thread: any. `scale` is the decode fragment's name=scale videoscale,
    // `tile` its name=tile capsfilter, which follows it.
    TileScaler(GstElement* scale, GstElement* tile);

    // Thread: main. Scales to width x height (letterboxed with `keepAspect`)
    // from the next frame; sets nothing when nothing changed. 0 x 0 until
    // the first call: the fragment's own size.
    void set(unsigned width, unsigned height, bool keepAspect);
    unsigned height() const { return m_height; }

private:
    unsigned m_width = 0, m_height = 0;
    bool m_keepAspect = true; // the fragment's add-borders=true
    // The next frame's setting (see tile_scaler.cpp), 0: none. Shared with the pad probe.
    std::shared_ptr<std::atomic<std::uint64_t>> m_pending = std::make_shared<std::atomic<std::uint64_t>>(0);
};

} // namespace tessera::media
