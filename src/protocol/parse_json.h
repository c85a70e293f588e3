#pragma once
// Parsing JSON text that comes from outside (frames, request bodies, config
// files) into Error(BadRequest). nlohmann reports a syntax error as
// parse_error but a number too large for a double ("1e444") as out_of_range:
// both are bad input, found by fuzzing (tests/fuzz).
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "tessera/protocol/error.h"

namespace tessera {

// `what` names the input in the message ("config: not valid JSON (byte 3)").
inline nlohmann::json parseJson(std::string_view text, std::string_view what,
                                nlohmann::json::parser_callback_t callback = nullptr) {
    try {
        return nlohmann::json::parse(text, std::move(callback));
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(ErrorCode::BadRequest,
                    std::string(what) + ": not valid JSON (byte " + std::to_string(e.byte) + ")");
    } catch (const nlohmann::json::out_of_range&) {
        throw Error(ErrorCode::BadRequest, std::string(what) + ": not valid JSON (number out of range)");
    }
}

} // namespace tessera
