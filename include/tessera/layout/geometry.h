#pragma once
// Layout geometry: pure, no GStreamer. (sources, speaker, spec, canvas) -> tiles.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tessera/protocol/layout_spec.h"
#include "tessera/protocol/messages.h"

namespace tessera::layout {

struct Source {
    std::string id; // unique per video source (a camera or a screen share)
    std::string participantId;
    std::string name; // the participant's display name
    bool screenShare = false;
    unsigned aspectW = 16; // the source's aspect ratio (inputs are normalised, so usually 16:9)
    unsigned aspectH = 9;
    // The participant's last turn as the active speaker (SpeakerRecency); 0:
    // never. Orders a `"order": "recent"` rest grid.
    std::uint64_t lastSpoke = 0;
};

// Who spoke last: each new active speaker takes the next turn number, so a
// higher number is a more recent speaker. Fed the room's speaker decisions.
class SpeakerRecency {
public:
    // `participantId` became the active speaker ("" : nobody, which changes nothing).
    void spoke(const std::string& participantId);
    // Its last turn, 0 if it never spoke.
    std::uint64_t lastSpoke(const std::string& participantId) const;
    // A leaver: it keeps no place in the order.
    void forget(const std::string& participantId);

private:
    std::uint64_t m_turn = 0;
    std::map<std::string, std::uint64_t> m_last;
};

struct Tile {
    std::string sourceId;
    int x = 0, y = 0, width = 0, height = 0; // the picture, pixels on the canvas
    int z = 0;
    int border = 0; // a frame this many pixels wide drawn around (outside) the picture
};

// A rectangle in canvas pixels.
struct Rect {
    int x = 0, y = 0, width = 0, height = 0;
    bool operator==(const Rect&) const = default;
};

// Sources are in join order. `speakerId` is a participant id (may be empty).
// Returns one tile per visible source; sources that fit nowhere, or beyond
// the rest grid's `restMax`, are omitted.
std::vector<Tile> computeTiles(const std::vector<Source>& sources, const std::string& speakerId,
                               const protocol::LayoutSpec& spec, unsigned canvasWidth, unsigned canvasHeight);

// Who is in the picture (docs/protocol.md, `on-screen`): a participant is
// shown when any of its sources has a tile, hidden when it has sources and
// none has one. Both lists in the order of `sources`, each id once.
protocol::OnScreen onScreen(const std::vector<Source>& sources, const std::vector<Tile>& tiles);

// The parts of the tiles' borders that are not hidden by a tile drawn above
// them, as disjoint rectangles on even pixels. `tiles` is in drawing order
// (computeTiles' order: by z, later on top). The media module paints these
// onto each composite frame, after the compositor has drawn the pictures.
std::vector<Rect> visibleBorders(const std::vector<Tile>& tiles);

// The automatic grid: columns x rows for n tiles in a cell of the given aspect.
struct GridShape {
    unsigned columns = 1, rows = 1;
};
GridShape gridShape(unsigned n, double cellAspect, double sourceAspect);

// The built-in grid spec (used when no file defines "grid").
protocol::LayoutSpec defaultGridSpec();

} // namespace tessera::layout
