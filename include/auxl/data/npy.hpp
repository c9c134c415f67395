// auxl/data/npy.hpp — NumPy .npy files in and out, through xtensor's npy support.
//
// load_npy<T>(path) returns an xt::xarray<T>; save_npy(path, array) writes one atomically.
// Reading does not use xtensor's reader, which trusts the header (a truncated file yields
// uninitialised values) and parses it more loosely than we check it (a fuzzed header once gave
// it a different shape from ours): the header is parsed strictly here — magic, version, a dict
// of exactly descr, fortran_order and shape, dtype equal to T (no silent casts), C order, exactly
// shape-product × item-size data bytes — and the array is built from that parse.  Every failure
// is an io_error naming the file and what was expected and found.  Writing uses xt::dump_npy.
#pragma once

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
    // The header is a Python dict literal with exactly the keys descr, fortran_order and shape,
    // then spaces and a newline.  It is parsed strictly, and the array is built from this parse
    // (never from a second, laxer one), so the shape checked is the shape returned.
    auto fail_in = [&](const char* field, const char* what) -> void {
        raise<io_error>("auxl::data::load_npy: ", file, " field ", field, ": ", what, " in the header \"", header, "\"");
    };
    auto fail = [&](const char* what) { fail_in("header", what); };
    std::size_t pos = 0;
    auto skip_spaces = [&] {
        while (pos < header.size() && header[pos] == ' ') ++pos;
    };
    auto expect = [&](char c, const char* what) {
        skip_spaces();
        if (pos >= header.size() || header[pos] != c) fail(what);
        ++pos;
    };
    auto quoted = [&]() {
        expect('\'', "expected a quoted string");
        const auto close = header.find('\'', pos);
        if (close == std::string::npos) fail("unterminated string");
        std::string text = header.substr(pos, close - pos);
        pos = close + 1;
        return text;
    };
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{', "expected '{'");
    for (;;) {
        skip_spaces();
        if (pos < header.size() && header[pos] == '}') break;
        const std::string key = quoted();
        expect(':', "expected ':' after a key");
        skip_spaces();
        if (key == "descr" && !have_descr) {
            h.descr = quoted();
            have_descr = true;
        } else if (key == "fortran_order" && !have_order) {
            if (header.compare(pos, 4, "True") == 0) {
                h.fortran_order = true;
                pos += 4;
            } else if (header.compare(pos, 5, "False") == 0) {
                pos += 5;
            } else {
                fail_in("fortran_order", "expected True or False");
            }
            have_order = true;
        } else if (key == "shape" && !have_shape) {
            expect('(', "expected '(' for the shape");
            for (;;) {
                skip_spaces();
                if (pos < header.size() && header[pos] == ')') break;
                if (pos >= header.size() || !std::isdigit(static_cast<unsigned char>(header[pos]))) fail_in("shape", "entries must be integers");
                std::size_t dim = 0;
                while (pos < header.size() && std::isdigit(static_cast<unsigned char>(header[pos]))) {
                    if (dim > (std::size_t(1) << 40)) fail_in("shape", "an entry is too large");
                    dim = dim * 10 + std::size_t(header[pos] - '0');
                    ++pos;
                }
                h.shape.push_back(dim);
                skip_spaces();
                if (pos < header.size() && header[pos] == ',') ++pos;
                else if (pos >= header.size() || header[pos] != ')') fail_in("shape", "expected ',' or ')'");
            }
            ++pos;  // ')'
            have_shape = true;
        } else {
            fail("unknown or repeated key");
        }
        skip_spaces();
        if (pos < header.size() && header[pos] == ',') ++pos;
        else if (pos >= header.size() || header[pos] != '}') fail("expected ',' or '}' after a value");
    }
    ++pos;  // '}'
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == '\n')) ++pos;
    if (pos != header.size()) fail("unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape) fail("descr, fortran_order and shape are all required");
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
    // descr equals this machine's typestring of T (byte order included): the bytes are T as stored.
    xt::xarray<T> out = xt::xarray<T>::from_shape(header.shape);
    if (count > 0) std::memcpy(out.data(), bytes.data() + header.data_offset, count * sizeof(T));
    return out;
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
