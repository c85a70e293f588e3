// Layout specs as JSON -> protocol::LayoutSpec, validated field by field.
//
// The shape (data/layouts/README.md documents every key with its unit and default):
//
//   {
//     "name": "speaker",                        required; 1-64 of [A-Za-z0-9_-]
//     "description": "...",                     optional; ignored (JSON has no comments)
//     "canvas": {"width": 1280, "height": 720}, optional; even integers 16..7680;
//                                               absent: the configured composite size
//     "background": "#000000",                  optional; "#rrggbb"
//     "slots": [                                optional; at most 64, placed in order
//       {"x": 0, "y": 0, "w": 1, "h": 0.8,      fractions of the canvas (default 0, 0, 1, 1)
//        "z": 0,                                stacking order (default 0)
//        "source": "speaker",                   "speaker" | "next" | "screenshare" | "participant"
//        "participant": "Alice"}                display name; only with "participant"
//     ],
//     "rest": {"x": 0, "y": 0.8, "w": 1, "h": 0.2, "z": 0,
//              "max": 8,                        optional; at most this many (default: all)
//              "order": "recent"},              optional; "join" (default) | "recent": latest speaker first
//                                               optional; everyone not in a slot, as a grid
//     "keepAspect": true,                       optional (default true)
//     "padding": 4,                             optional; pixels, 0..256 (default 0)
//     "border": 2,                              optional; pixels, 0..64 (default 0)
//     "borderColor": "#ffffff",                 optional; "#rrggbb" (default white)
//     "labels": false                           optional (default false)
//   }
//
// A spec must have at least one slot or a rest region. Unknown keys are errors,
// so a typo ("colour", "heigth") fails loudly instead of silently using a default.
// Every error is Error(BadRequest) whose message starts with the field it is about
// ("slots[1].w: must be > 0 and <= 1"), because a person editing a file or a PUT
// body needs to know exactly what to fix.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tessera/protocol/error.h"
#include "tessera/protocol/layout_spec.h"

namespace tessera::protocol {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxSlots = 64;
constexpr std::int64_t kMaxZ = 1000;
constexpr double kMaxPadding = 256;
constexpr double kMaxBorder = 64;
constexpr std::int64_t kMinCanvas = 16;
constexpr std::int64_t kMaxCanvas = 7680;
// A grid cap beyond this is no cap a call could reach (maxParticipants).
constexpr std::int64_t kMaxRest = 1000;
// Fractions come from decimal text: 0.7 + 0.3 is not exactly 1 in binary, and a
// spec author must not be punished for that.
constexpr double kFractionSlack = 1e-9;

[[noreturn]] void fail(std::string_view field, std::string_view reason) {
    std::string message;
    if (!field.empty()) {
        message.append(field);
        message.append(": ");
    }
    message.append(reason);
    throw Error(ErrorCode::BadRequest, message);
}

std::string fieldName(std::string_view path, std::string_view key) {
    if (path.empty()) return std::string(key);
    std::string field(path);
    field += '.';
    field += key;
    return field;
}

// Echoes client text into an error message, bounded, without cutting a UTF-8
// sequence in half (the message is serialised to JSON, which rejects broken UTF-8).
std::string excerpt(std::string_view text) {
    constexpr std::size_t kMax = 64;
    if (text.size() <= kMax) return std::string(text);
    std::size_t end = kMax;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end)) + "...";
}

// Error text from the JSON library may quote raw input bytes; keep printable ASCII only.
std::string asciiOnly(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) out += (c >= 0x20 && c < 0x7F) ? c : '?';
    return out;
}

std::size_t utf8Length(std::string_view text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void requireObject(const json& value, std::string_view field) {
    if (!value.is_object()) fail(field, "must be an object");
}

void checkKeys(const json& object, std::string_view path, std::initializer_list<std::string_view> allowed) {
    for (const auto& item : object.items()) {
        const std::string& key = item.key();
        if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
        std::string reason = "unknown key '" + excerpt(key) + "' (allowed:";
        for (std::string_view name : allowed) {
            reason += ' ';
            reason += name;
        }
        reason += ')';
        fail(path, reason);
    }
}

const json* member(const json& object, const char* key) {
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

double number(const json& object, std::string_view path, const char* key, double fallback) {
    const json* value = member(object, key);
    if (!value) return fallback;
    const std::string field = fieldName(path, key);
    if (!value->is_number()) fail(field, "must be a number");
    const double result = value->get<double>();
    if (!std::isfinite(result)) fail(field, "must be a finite number");
    return result;
}

// Accepts JSON integers only: 1.5 for a pixel count or a z order is a mistake
// worth reporting, not something to round silently.
std::int64_t integer(const json& value, std::string_view field, std::int64_t min, std::int64_t max,
                     std::string_view rangeReason) {
    std::int64_t result = 0;
    if (value.is_number_unsigned()) {
        const auto u = value.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(max)) fail(field, rangeReason);
        result = static_cast<std::int64_t>(u);
    } else if (value.is_number_integer()) {
        result = value.get<std::int64_t>();
    } else {
        fail(field, "must be an integer");
    }
    if (result < min || result > max) fail(field, rangeReason);
    return result;
}

bool boolean(const json& object, std::string_view path, const char* key, bool fallback) {
    const json* value = member(object, key);
    if (!value) return fallback;
    if (!value->is_boolean()) fail(fieldName(path, key), "must be true or false");
    return value->get<bool>();
}

const std::string& stringValue(const json& value, std::string_view field) {
    if (!value.is_string()) fail(field, "must be a string");
    return value.get_ref<const std::string&>();
}

int zOrder(const json& object, std::string_view path) {
    const json* value = member(object, "z");
    if (!value) return 0;
    return static_cast<int>(
        integer(*value, fieldName(path, "z"), -kMaxZ, kMaxZ, "must be an integer between -1000 and 1000"));
}

// x, y, w, h of a slot or of the rest region; `path` is "slots[2]" or "rest".
FracRect rect(const json& object, std::string_view path) {
    FracRect r;
    r.x = number(object, path, "x", 0);
    r.y = number(object, path, "y", 0);
    r.w = number(object, path, "w", 1);
    r.h = number(object, path, "h", 1);
    if (r.x < 0 || r.x >= 1) fail(fieldName(path, "x"), "must be >= 0 and < 1");
    if (r.y < 0 || r.y >= 1) fail(fieldName(path, "y"), "must be >= 0 and < 1");
    if (r.w <= 0 || r.w > 1) fail(fieldName(path, "w"), "must be > 0 and <= 1");
    if (r.h <= 0 || r.h > 1) fail(fieldName(path, "h"), "must be > 0 and <= 1");
    if (r.x + r.w > 1 + kFractionSlack) fail(path, "extends past the canvas (x + w > 1)");
    if (r.y + r.h > 1 + kFractionSlack) fail(path, "extends past the canvas (y + h > 1)");
    return r;
}

Slot::Source slotSource(const json& value, std::string_view field) {
    const std::string& text = stringValue(value, field);
    if (text == "next") return Slot::Source::Next;
    if (text == "speaker") return Slot::Source::Speaker;
    if (text == "screenshare") return Slot::Source::ScreenShare;
    if (text == "participant") return Slot::Source::Participant;
    fail(field, "must be one of \"speaker\", \"next\", \"screenshare\", \"participant\"");
}

Slot slot(const json& object, std::string_view path) {
    requireObject(object, path);
    checkKeys(object, path, {"x", "y", "w", "h", "z", "source", "participant"});
    Slot result;
    result.rect = rect(object, path);
    result.z = zOrder(object, path);
    if (const json* source = member(object, "source")) result.source = slotSource(*source, fieldName(path, "source"));

    const std::string participantField = fieldName(path, "participant");
    const json* participant = member(object, "participant");
    if (result.source == Slot::Source::Participant) {
        if (!participant) fail(participantField, "required when source is \"participant\"");
        result.participant = stringValue(*participant, participantField);
        // Display names are 1-64 characters (docs/protocol.md "join").
        const std::size_t length = utf8Length(result.participant);
        if (length < 1 || length > 64) fail(participantField, "must be a display name of 1-64 characters");
    } else if (participant) {
        // Almost certainly a forgotten "source": "participant"; ignoring it would
        // show someone else in the slot.
        fail(participantField, "only allowed when source is \"participant\"");
    }
    return result;
}

void parseName(const json& spec, LayoutSpec& out) {
    const json* value = member(spec, "name");
    if (!value) fail("name", "required");
    out.name = stringValue(*value, "name");
    // Same alphabet as room names: names appear in URLs, file names and logs.
    const bool valid =
        !out.name.empty() && out.name.size() <= 64 && std::all_of(out.name.begin(), out.name.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    if (!valid) fail("name", "must be 1-64 of [A-Za-z0-9_-]");
}

void parseCanvas(const json& spec, LayoutSpec& out) {
    const json* canvas = member(spec, "canvas");
    if (!canvas) return;
    requireObject(*canvas, "canvas");
    checkKeys(*canvas, "canvas", {"width", "height"});
    // Even sizes: I420 video has one chroma sample per 2x2 pixels.
    auto dimension = [&](const char* key) {
        const std::string field = fieldName("canvas", key);
        const json* value = member(*canvas, key);
        if (!value) fail(field, "required");
        const auto pixels =
            integer(*value, field, kMinCanvas, kMaxCanvas, "must be an even integer between 16 and 7680");
        if (pixels % 2 != 0) fail(field, "must be an even integer between 16 and 7680");
        return static_cast<unsigned>(pixels);
    };
    out.canvasWidth = dimension("width");
    out.canvasHeight = dimension("height");
}

// A "#rrggbb" colour at the top level (`key`), or `fallback` when absent.
std::string colour(const json& spec, const char* key, const std::string& fallback) {
    const json* value = member(spec, key);
    if (!value) return fallback;
    const std::string& text = stringValue(*value, key);
    const bool valid = text.size() == 7 && text[0] == '#' && std::all_of(text.begin() + 1, text.end(), [](char c) {
                           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
                       });
    if (!valid) fail(key, "must be #rrggbb");
    return text;
}

void parseSlots(const json& spec, LayoutSpec& out) {
    const json* slots = member(spec, "slots");
    if (!slots) return;
    if (!slots->is_array()) fail("slots", "must be an array");
    if (slots->size() > kMaxSlots) fail("slots", "at most 64 slots");
    out.slots.reserve(slots->size());
    for (std::size_t i = 0; i < slots->size(); ++i)
        out.slots.push_back(slot((*slots)[i], "slots[" + std::to_string(i) + "]"));
}

void parseRest(const json& spec, LayoutSpec& out) {
    const json* rest = member(spec, "rest");
    if (!rest) return;
    requireObject(*rest, "rest");
    checkKeys(*rest, "rest", {"x", "y", "w", "h", "z", "max", "order"});
    out.rest = rect(*rest, "rest");
    out.restZ = zOrder(*rest, "rest");
    if (const json* max = member(*rest, "max"))
        out.restMax =
            static_cast<unsigned>(integer(*max, "rest.max", 1, kMaxRest, "must be an integer between 1 and 1000"));
    if (const json* order = member(*rest, "order")) {
        const std::string& text = stringValue(*order, "rest.order");
        if (text == "join")
            out.restOrder = LayoutSpec::RestOrder::Join;
        else if (text == "recent")
            out.restOrder = LayoutSpec::RestOrder::Recent;
        else
            fail("rest.order", "must be \"join\" or \"recent\"");
    }
}

} // namespace

void checkCanvasArea(const LayoutSpec& spec, std::uint64_t maxPixels) {
    const std::uint64_t pixels = std::uint64_t{spec.canvasWidth} * spec.canvasHeight;
    if (maxPixels == 0 || pixels <= maxPixels) return;
    fail("canvas", std::to_string(spec.canvasWidth) + "x" + std::to_string(spec.canvasHeight) + " is " +
                       std::to_string(pixels) + " pixels, over limits.maxCanvasPixels (" + std::to_string(maxPixels) +
                       ")");
}

LayoutSpec parseLayoutSpec(std::string_view text) {
    json spec;
    try {
        spec = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        // Drop the library's "[json.exception.parse_error.101] " prefix; keep the position.
        std::string_view what = e.what();
        if (const auto end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
        fail("", "invalid JSON: " + asciiOnly(what));
    }
    if (!spec.is_object()) fail("", "a layout spec must be a JSON object");
    checkKeys(spec, "",
              {"name", "description", "canvas", "background", "slots", "rest", "keepAspect", "padding", "border",
               "borderColor", "labels"});

    LayoutSpec out;
    parseName(spec, out);
    if (const json* description = member(spec, "description")) stringValue(*description, "description");
    parseCanvas(spec, out);
    out.background = colour(spec, "background", out.background);
    parseSlots(spec, out);
    parseRest(spec, out);
    out.keepAspect = boolean(spec, "", "keepAspect", true);
    out.padding = number(spec, "", "padding", 0);
    if (out.padding < 0 || out.padding > kMaxPadding) fail("padding", "must be between 0 and 256 (pixels)");
    out.border = number(spec, "", "border", 0);
    if (out.border < 0 || out.border > kMaxBorder) fail("border", "must be between 0 and 64 (pixels)");
    out.borderColor = colour(spec, "borderColor", out.borderColor);
    out.labels = boolean(spec, "", "labels", false);

    if (out.slots.empty() && !out.rest) fail("slots", "required (at least one slot) when there is no rest region");
    return out;
}

} // namespace tessera::protocol
