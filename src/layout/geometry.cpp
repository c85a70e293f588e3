// Layout geometry: which source goes where, in whole even pixels.
//
// Pure on purpose (no GStreamer, no JSON): the media module turns the tiles into
// compositor pad properties; everything here is unit-tested in milliseconds.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>

#include "tessera/layout/geometry.h"

namespace tessera::layout {
namespace {

using protocol::FracRect;
using protocol::LayoutSpec;
using protocol::Slot;

// Positions and sizes are even everywhere: I420 has one chroma sample per 2x2
// pixels, and an odd offset makes the compositor shift or smear colours.
int roundEven(double value) { return 2 * static_cast<int>(std::lround(value / 2)); }
int floorEven(int value) { // value >= 0
    return value - value % 2;
}

// Canvases beyond this are not video; the bound keeps int arithmetic safe.
constexpr unsigned kMaxCanvas = 1u << 15;

struct PixelRect {
    int x = 0, y = 0, width = 0, height = 0;
};

struct Canvas {
    int width = 0, height = 0;

    // Snaps each edge (not x and width separately) to even pixels, so regions that
    // touch as fractions touch exactly as pixels: never a gap, never an overlap.
    PixelRect toPixels(const FracRect& r) const {
        auto edge = [](double fraction, int size) { return std::clamp(roundEven(fraction * size), 0, size); };
        const int x0 = edge(r.x, width), x1 = edge(r.x + r.w, width);
        const int y0 = edge(r.y, height), y1 = edge(r.y + r.h, height);
        return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
    }
};

// A source's aspect, or nothing when it is not known (a zero in it).
std::optional<double> aspectOf(const Source& source) {
    if (source.aspectW == 0 || source.aspectH == 0) return std::nullopt;
    return static_cast<double>(source.aspectW) / source.aspectH;
}

// The tile for `source` inside `cell`: `padding` pixels off each side, then
// `border` pixels for the frame, then (with keepAspect) the largest rectangle
// of the source's aspect, centred; the frame hugs that picture. Nothing when
// the cell is too small to hold any picture.
std::optional<Tile> fitTile(const PixelRect& cell, const Source& source, const LayoutSpec& spec, int z) {
    if (cell.width < 2 || cell.height < 2) return std::nullopt;
    // Padding and border never eat the whole cell: a tiny picture beats a missing one.
    const int maxPad = floorEven((std::min(cell.width, cell.height) - 2) / 2);
    const int pad = std::clamp(roundEven(spec.padding), 0, maxPad);
    const int maxBorder = floorEven((std::min(cell.width, cell.height) - 2 * pad - 2) / 2);
    const int border = std::clamp(roundEven(spec.border), 0, maxBorder);
    const int inset = pad + border;
    const int innerW = cell.width - 2 * inset;
    const int innerH = cell.height - 2 * inset;

    int width = innerW, height = innerH;
    if (const auto aspect = aspectOf(source); spec.keepAspect && aspect) {
        if (innerW <= innerH * *aspect)
            height = std::clamp(roundEven(innerW / *aspect), 2, innerH); // width-limited
        else
            width = std::clamp(roundEven(innerH * *aspect), 2, innerW); // height-limited
    }
    return Tile{source.id,
                cell.x + inset + floorEven((innerW - width) / 2),
                cell.y + inset + floorEven((innerH - height) / 2),
                width,
                height,
                z,
                border};
}

// a minus b: up to four disjoint rectangles (the bands above and below b, then
// the parts left and right of it).
void subtract(const Rect& a, const Rect& b, std::vector<Rect>& out) {
    const int ax1 = a.x + a.width, ay1 = a.y + a.height;
    const int bx1 = b.x + b.width, by1 = b.y + b.height;
    if (b.x >= ax1 || bx1 <= a.x || b.y >= ay1 || by1 <= a.y) {
        out.push_back(a); // no overlap
        return;
    }
    const int top = std::max(a.y, b.y), bottom = std::min(ay1, by1);
    if (a.y < top) out.push_back({a.x, a.y, a.width, top - a.y});
    if (bottom < ay1) out.push_back({a.x, bottom, a.width, ay1 - bottom});
    if (a.x < b.x) out.push_back({a.x, top, b.x - a.x, bottom - top});
    if (bx1 < ax1) out.push_back({bx1, top, ax1 - bx1, bottom - top});
}

Rect outerRect(const Tile& t) {
    return {t.x - t.border, t.y - t.border, t.width + 2 * t.border, t.height + 2 * t.border};
}

// Index of the first unplaced source matching `pred`, in join order.
template <typename Pred>
std::optional<std::size_t> firstUnplaced(const std::vector<Source>& sources, const std::vector<bool>& placed,
                                         Pred pred) {
    for (std::size_t i = 0; i < sources.size(); ++i)
        if (!placed[i] && pred(sources[i])) return i;
    return std::nullopt;
}

std::optional<std::size_t> pickForSlot(const Slot& slot, const std::vector<Source>& sources,
                                       const std::vector<bool>& placed, const std::string& speakerId) {
    auto camera = [](const Source& s) { return !s.screenShare; };
    switch (slot.source) {
    case Slot::Source::Speaker:
        // No speaker yet, a speaker without a camera, or one already shown by an
        // earlier slot: the slot still shows someone rather than staying black.
        if (!speakerId.empty())
            if (auto i = firstUnplaced(sources, placed,
                                       [&](const Source& s) { return camera(s) && s.participantId == speakerId; }))
                return i;
        return firstUnplaced(sources, placed, camera);
    case Slot::Source::ScreenShare:
        return firstUnplaced(sources, placed, [](const Source& s) { return s.screenShare; });
    case Slot::Source::Participant:
        return firstUnplaced(sources, placed, [&](const Source& s) { return camera(s) && s.name == slot.participant; });
    case Slot::Source::Next: return firstUnplaced(sources, placed, camera);
    }
    return std::nullopt;
}

// The automatic grid: `indices` (join order) in rows of equal cells inside
// `region`, the block centred in the region and the last row centred in the block.
void placeGrid(const std::vector<std::size_t>& indices, const std::vector<Source>& sources, const PixelRect& region,
               const LayoutSpec& spec, std::vector<Tile>& tiles) {
    if (indices.empty() || region.width < 2 || region.height < 2) return;

    // Inputs are normalised to one aspect in practice; the mean covers the odd one out.
    double aspectSum = 0;
    unsigned aspectCount = 0;
    for (std::size_t i : indices)
        if (const auto aspect = aspectOf(sources[i])) {
            aspectSum += *aspect;
            ++aspectCount;
        }
    const double sourceAspect = aspectCount ? aspectSum / aspectCount : 16.0 / 9.0;

    const auto n = static_cast<unsigned>(indices.size());
    const GridShape shape = gridShape(n, static_cast<double>(region.width) / region.height, sourceAspect);
    const int columns = static_cast<int>(shape.columns);
    const int rows = static_cast<int>(shape.rows);
    // Equal cells (rather than edges snapped one by one) give equal tiles.
    const int cellW = floorEven(region.width / columns);
    const int cellH = floorEven(region.height / rows);
    if (cellW < 2 || cellH < 2) return; // more sources than the region has pixels for
    const int blockX = region.x + floorEven((region.width - columns * cellW) / 2);
    const int blockY = region.y + floorEven((region.height - rows * cellH) / 2);

    for (unsigned k = 0; k < n; ++k) {
        const int row = static_cast<int>(k / shape.columns);
        const int column = static_cast<int>(k % shape.columns);
        const int inRow = std::min(columns, static_cast<int>(n) - row * columns);
        const int rowShift = floorEven((columns - inRow) * cellW / 2);
        const PixelRect cell{blockX + rowShift + column * cellW, blockY + row * cellH, cellW, cellH};
        if (auto tile = fitTile(cell, sources[indices[k]], spec, spec.restZ)) tiles.push_back(std::move(*tile));
    }
}

} // namespace

GridShape gridShape(unsigned n, double cellAspect, double sourceAspect) {
    if (n <= 1) return {1, 1};
    if (!std::isfinite(cellAspect) || cellAspect <= 0) cellAspect = 1;
    if (!std::isfinite(sourceAspect) || sourceAspect <= 0) sourceAspect = 1;

    // In units where the region is cellAspect wide and 1 high, a tile's width is
    // limited by its column's width or by its row's height at the source aspect.
    // Tile area grows with that width, so the best shape maximises it.
    // Equal quantities computed along different paths (1280.0 / 720 and 16.0 / 9)
    // may differ in the last bit; closer than this they are equal.
    constexpr double kTie = 1e-9;
    // Same size, same holes (2 tiles: 2x1 or 1x2): lay the grid along the
    // region's long side relative to the sources, as people expect.
    const bool wide = cellAspect >= sourceAspect * (1 - kTie);

    GridShape best;
    double bestWidth = -1;
    std::uint64_t bestEmpty = 0;
    for (unsigned columns = 1; columns <= n; ++columns) {
        const unsigned rows = (n - 1) / columns + 1;
        const double width = std::min(cellAspect / columns, sourceAspect / rows);
        const std::uint64_t empty = std::uint64_t{columns} * rows - n;
        bool better;
        if (width > bestWidth * (1 + kTie))
            better = true;
        else if (width < bestWidth * (1 - kTie))
            better = false;
        else if (empty != bestEmpty)
            better = empty < bestEmpty; // fewer holes
        else
            better = wide ? columns > best.columns : rows > best.rows;
        if (better) {
            best = {columns, rows};
            bestWidth = width;
            bestEmpty = empty;
        }
    }
    return best;
}

std::vector<Tile> computeTiles(const std::vector<Source>& sources, const std::string& speakerId, const LayoutSpec& spec,
                               unsigned canvasWidth, unsigned canvasHeight) {
    // An odd canvas dimension loses its last pixel column/row rather than
    // letting a tile end on an odd pixel.
    const Canvas canvas{floorEven(static_cast<int>(std::min(canvasWidth, kMaxCanvas))),
                        floorEven(static_cast<int>(std::min(canvasHeight, kMaxCanvas)))};
    std::vector<Tile> tiles;
    if (canvas.width < 2 || canvas.height < 2) return tiles;

    std::vector<bool> placed(sources.size(), false);
    for (const Slot& slot : spec.slots) {
        const auto index = pickForSlot(slot, sources, placed, speakerId);
        if (!index) continue; // an empty slot: the background shows through
        placed[*index] = true;
        if (auto tile = fitTile(canvas.toPixels(slot.rect), sources[*index], spec, slot.z))
            tiles.push_back(std::move(*tile));
    }

    if (spec.rest) {
        std::vector<std::size_t> rest;
        for (std::size_t i = 0; i < sources.size(); ++i)
            if (!placed[i]) rest.push_back(i);
        // Stable: join order among equals (those who never spoke).
        if (spec.restOrder == LayoutSpec::RestOrder::Recent)
            std::stable_sort(rest.begin(), rest.end(),
                             [&](std::size_t a, std::size_t b) { return sources[a].lastSpoke > sources[b].lastSpoke; });
        if (spec.restMax && rest.size() > spec.restMax) rest.resize(spec.restMax);
        placeGrid(rest, sources, canvas.toPixels(*spec.rest), spec, tiles);
    }

    // The compositor draws higher z on top; within a z, placement order is the
    // natural reading order and keeps the output deterministic.
    std::stable_sort(tiles.begin(), tiles.end(), [](const Tile& a, const Tile& b) { return a.z < b.z; });
    return tiles;
}

void SpeakerRecency::spoke(const std::string& participantId) {
    if (!participantId.empty()) m_last[participantId] = ++m_turn;
}

std::uint64_t SpeakerRecency::lastSpoke(const std::string& participantId) const {
    const auto it = m_last.find(participantId);
    return it == m_last.end() ? 0 : it->second;
}

void SpeakerRecency::forget(const std::string& participantId) { m_last.erase(participantId); }

protocol::OnScreen onScreen(const std::vector<Source>& sources, const std::vector<Tile>& tiles) {
    // Sets: a large room relayouts often (every speaker change).
    std::set<std::string> tiled, shown, listed;
    for (const Tile& t : tiles) tiled.insert(t.sourceId);
    for (const Source& s : sources)
        if (tiled.count(s.id)) shown.insert(s.participantId);
    protocol::OnScreen out;
    for (const Source& s : sources)
        if (listed.insert(s.participantId).second)
            (shown.count(s.participantId) ? out.shown : out.hidden).push_back(s.participantId);
    return out;
}

std::vector<Rect> visibleBorders(const std::vector<Tile>& tiles) {
    std::vector<Rect> out;
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        const Tile& t = tiles[i];
        const int b = t.border;
        if (b <= 0) continue;
        std::vector<Rect> parts = {
            {t.x - b, t.y - b, t.width + 2 * b, b},        // top, corners included
            {t.x - b, t.y + t.height, t.width + 2 * b, b}, // bottom
            {t.x - b, t.y, b, t.height},                   // left
            {t.x + t.width, t.y, b, t.height},             // right
        };
        // Whatever is drawn later (a picture or its frame) covers this frame.
        for (std::size_t j = i + 1; j < tiles.size() && !parts.empty(); ++j) {
            const Rect above = outerRect(tiles[j]);
            std::vector<Rect> left;
            for (const Rect& part : parts) subtract(part, above, left);
            parts = std::move(left);
        }
        out.insert(out.end(), parts.begin(), parts.end());
    }
    return out;
}

protocol::LayoutSpec defaultGridSpec() {
    // Keep equal to data/layouts/grid.json (a unit test checks it).
    LayoutSpec spec;
    spec.name = "grid";
    spec.background = "#000000";
    spec.rest = FracRect{0, 0, 1, 1};
    spec.restZ = 0;
    spec.keepAspect = true;
    spec.padding = 4;
    spec.labels = false;
    return spec;
}

} // namespace tessera::layout
