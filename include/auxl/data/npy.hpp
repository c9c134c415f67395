// auxl/data/npy.hpp — NumPy .npy files in and out, through xtensor's npy support.
//
// load_npy<T>(path) returns an xt::xarray<T>; save_npy(path, array) writes one atomically.
// xtensor's reader trusts the header (a truncated file yields uninitialised values), so the
// header is checked here first: magic, version, dtype (must be T exactly — no silent casts),
// C order, and that the file holds exactly shape-product × item-size data bytes.  Every failure
// is an io_error naming the file and what was expected and found.
#pragma once

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "auxl/core/error.hpp"
#include "auxl/core/xtensor.hpp"
#include "auxl/io/atomic_write.hpp"

#if __has_include(<xtensor/io/xnpy.hpp>)
#include <xtensor/io/xnpy.hpp>
#else
#include <xtensor/xnpy.hpp>
#endif

namespace auxl::data {

namespace detail {

struct npy_header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
    std::size_t data_offset = 0;
};

inline std::string npy_value_of(const std::string& header, const std::string& key, const std::string& file) {
    const auto k = header.find("'" + key + "'");
    if (k == std::string::npos) raise<io_error>("auxl::data::load_npy: ", file, " header has no '", key, "' field");
    auto colon = header.find(':', k);
    if (colon == std::string::npos) raise<io_error>("auxl::data::load_npy: ", file, " header field '", key, "' has no value");
    ++colon;
    while (colon < header.size() && header[colon] == ' ') ++colon;
    if (colon >= header.size()) raise<io_error>("auxl::data::load_npy: ", file, " header field '", key, "' has no value");
    if (header[colon] == '(') {
        const auto close = header.find(')', colon);
        if (close == std::string::npos) raise<io_error>("auxl::data::load_npy: ", file, " header field 'shape' is not closed");
        return header.substr(colon + 1, close - colon - 1);
    }
    if (header[colon] == '\'') {
        const auto close = header.find('\'', colon + 1);
        if (close == std::string::npos) raise<io_error>("auxl::data::load_npy: ", file, " header field '", key, "' is not closed");
        return header.substr(colon + 1, close - colon - 1);
    }
    const auto end = header.find_first_of(",}", colon);
    return header.substr(colon, end == std::string::npos ? std::string::npos : end - colon);
}

inline npy_header parse_npy_header(const std::string& bytes, const std::string& file) {
    static const char magic[] = "\x93NUMPY";
    if (bytes.size() < 10 || bytes.compare(0, 6, magic, 6) != 0) {
        raise<io_error>("auxl::data::load_npy: ", file, " field magic: expected \\x93NUMPY, found another file type");
    }
    const int major = static_cast<unsigned char>(bytes[6]);
    std::size_t length = 0, start = 0;
    if (major == 1) {
        length = std::size_t(static_cast<unsigned char>(bytes[8])) | (std::size_t(static_cast<unsigned char>(bytes[9])) << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) raise<io_error>("auxl::data::load_npy: ", file, " field header: truncated");
        for (int b = 3; b >= 0; --b) length = (length << 8) | static_cast<unsigned char>(bytes[8 + std::size_t(b)]);
        start = 12;
    } else {
        raise<io_error>("auxl::data::load_npy: ", file, " field version: expected 1, 2 or 3, found ", major);
    }
    if (bytes.size() < start + length) {
        raise<io_error>("auxl::data::load_npy: ", file, " field header: expected ", length, " bytes, found ", bytes.size() - start);
    }
    const std::string header = bytes.substr(start, length);
    npy_header h;
    h.data_offset = start + length;
    h.descr = npy_value_of(header, "descr", file);
    h.fortran_order = npy_value_of(header, "fortran_order", file).find("True") != std::string::npos;
    const std::string shape = npy_value_of(header, "shape", file);
    std::size_t pos = 0;
    while (pos < shape.size()) {
        while (pos < shape.size() && (shape[pos] == ' ' || shape[pos] == ',')) ++pos;
        if (pos >= shape.size()) break;
        std::size_t used = 0;
        unsigned long long dim = 0;
        try {
            dim = std::stoull(shape.substr(pos), &used);
        } catch (const std::exception&) {
            raise<io_error>("auxl::data::load_npy: ", file, " field shape: expected integers, found '", shape, "'");
        }
        h.shape.push_back(static_cast<std::size_t>(dim));
        pos += used;
    }
    return h;
}

inline std::size_t npy_item_size(const std::string& descr) {
    std::size_t i = descr.size();
    while (i > 0 && std::isdigit(static_cast<unsigned char>(descr[i - 1]))) --i;
    return i < descr.size() ? std::stoul(descr.substr(i)) : 0;
}

}  // namespace detail

/// Loads a C-order .npy file whose dtype is exactly T.
template <class T>
xt::xarray<T> load_npy(const std::filesystem::path& path) {
    const std::string file = path.string();
    std::ifstream in(path, std::ios::binary);
    if (!in) raise<io_error>("auxl::data::load_npy: cannot open ", file);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto header = detail::parse_npy_header(bytes, file);
    const std::string expected = xt::detail::build_typestring<T>();
    if (header.descr != expected) {
        raise<io_error>("auxl::data::load_npy: ", file, " field descr: expected '", expected, "', found '", header.descr, "'");
    }
    if (header.fortran_order) {
        raise<io_error>("auxl::data::load_npy: ", file, " field fortran_order: expected False (C order), found True");
    }
    std::size_t count = 1;
    for (auto d : header.shape) {
        if (d != 0 && count > (std::size_t(1) << 40) / d) {
            raise<io_error>("auxl::data::load_npy: ", file, " field shape: too large");
        }
        count *= d;
    }
    const std::size_t data_bytes = bytes.size() - header.data_offset;
    if (data_bytes != count * detail::npy_item_size(header.descr)) {
        raise<io_error>("auxl::data::load_npy: ", file, " field data: expected ", count * detail::npy_item_size(header.descr),
                        " bytes, found ", data_bytes, data_bytes < count * sizeof(T) ? " (truncated)" : " (trailing bytes)");
    }
    std::istringstream stream(bytes);
    try {
        return xt::load_npy<T>(stream);
    } catch (const std::exception& e) {
        raise<io_error>("auxl::data::load_npy: ", file, ": ", e.what());
    }
}

/// Writes `array` as .npy, atomically.
template <class E>
void save_npy(const std::filesystem::path& path, const E& array) {
    io::write_atomically(path, [&](std::ostream& out) {
        const std::string bytes = xt::dump_npy(array);
        out.write(bytes.data(), std::streamsize(bytes.size()));
    });
}

}  // namespace auxl::data
