#pragma once
// Layout specs: the data in data/layouts/*.json and in PUT /api/rooms/{room}/layout.
// Parsed by the protocol module (it owns JSON); used by the pure layout module.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::protocol {

// A rectangle in fractions of the canvas: 0 <= x, y; x + w <= 1; y + h <= 1; w, h > 0.
struct FracRect {
    double x = 0, y = 0, w = 1, h = 1;
    bool operator==(const FracRect&) const = default;
};

struct Slot {
    enum class Source {
        Next,        // the next participant camera in join order not placed yet
        Speaker,     // the active speaker (falls back to Next)
        ScreenShare, // the first live screen share (empty when there is none)
        Participant, // the participant whose name is `participant`
    };
    FracRect rect;
    int z = 0;
    Source source = Source::Next;
    std::string participant; // for Source::Participant
    bool operator==(const Slot&) const = default;
};

struct LayoutSpec {
    std::string name;
    unsigned canvasWidth = 0; // 0: the configured composite size
    unsigned canvasHeight = 0;
    std::string background = "#000000"; // "#rrggbb"
    std::vector<Slot> slots;            // placed first, in order
    std::optional<FracRect> rest;       // everyone not in a slot, as an automatic grid inside it
    int restZ = 0;
    // At most this many sources in the rest grid (0: no cap); the others are
    // not shown, so not decoded (a large call's "speaker + the N most recent").
    unsigned restMax = 0;
    // The rest grid's order: join order, or most recent speaker first (join
    // order among those who never spoke and as the tie-break).
    enum class RestOrder { Join, Recent } restOrder = RestOrder::Join;
    bool keepAspect = true;              // fit each source's aspect inside its cell, centred
    double padding = 0;                  // gap around each tile, pixels
    double border = 0;                   // a frame of this many pixels around each picture, inside the padding
    std::string borderColor = "#ffffff"; // "#rrggbb"
    bool labels = false;                 // draw each participant's name on its tile
    // Equal specs draw the same composite (a reload re-applies only changed layouts).
    bool operator==(const LayoutSpec&) const = default;
};

// Parses a spec. Throws Error(BadRequest) whose message names the field and
// why (e.g. "slots[1].w: must be > 0 and <= 1", "unknown key 'colour'").
LayoutSpec parseLayoutSpec(std::string_view json);

// Throws Error(BadRequest) naming "canvas" when the spec's own canvas has
// more than `maxPixels` pixels (limits.maxCanvasPixels; 0: no bound): each
// pixel is composited and encoded for every tier, so its area is CPU.
void checkCanvasArea(const LayoutSpec& spec, std::uint64_t maxPixels);

} // namespace tessera::protocol
