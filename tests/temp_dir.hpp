// A temporary directory removed when the test ends.
#pragma once

#include <filesystem>
#include <string>

#include <unistd.h>

#include "auxl/core/rng.hpp"

namespace auxl::testing {

class temp_dir {
public:
    temp_dir() {
        static std::uint64_t counter = 0;
        rng gen(std::uint64_t(::getpid()) * 1000003u + counter++, "tmp");
        path_ = std::filesystem::temp_directory_path() / ("auxl-test-" + std::to_string(gen()));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

}  // namespace auxl::testing
