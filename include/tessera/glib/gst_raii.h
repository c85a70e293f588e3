#pragma once
// Holders for GStreamer's mini-objects (caps, buffers, samples, events), the
// GStreamer half of the RAII layer in raii.h. Header-only.
#include <memory>

#include <gst/gst.h>

#include "tessera/glib/raii.h"

namespace tessera::glib {

using ElementRef = Ref<GstElement>;
using PadRef = Ref<GstPad>;

template <typename T>
struct MiniObjectDeleter {
    void operator()(T* p) const noexcept { gst_mini_object_unref(GST_MINI_OBJECT_CAST(p)); }
};
using CapsPtr = std::unique_ptr<GstCaps, MiniObjectDeleter<GstCaps>>;
using SamplePtr = std::unique_ptr<GstSample, MiniObjectDeleter<GstSample>>;
using BufferPtr = std::unique_ptr<GstBuffer, MiniObjectDeleter<GstBuffer>>;

} // namespace tessera::glib
