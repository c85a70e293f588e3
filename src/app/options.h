#pragma once
// The command line: tessera [OPTION...] [validate FILE...]
#include <string>
#include <vector>

#include "tessera/protocol/config.h"

namespace tessera::app {

struct Options {
    Config config;                    // defaults < --config file < flags; directories resolved
    std::vector<std::string> command; // the words after the options: empty, or {"validate", FILE...}
    bool version = false;             // --version: print it and exit
};

// Parses the command line with GOptionContext, GStreamer's options included
// (so this also initialises GStreamer). --help prints and exits. Throws Error
// with a message for the user (which flag or config key is wrong, and why).
// With --version nothing else is read.
Options parseOptions(int argc, char** argv);

} // namespace tessera::app
