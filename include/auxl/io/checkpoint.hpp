// auxl/io/checkpoint.hpp — the checkpoint file format.
//
//   "AUXLCKPT"  u32 format version  u64 type hash  u32 n + n bytes of manifest text
//   sections:   u32 n + name, u64 m + m bytes           (repeated)
//   u32 CRC-32 (zlib) of every byte before it
// All integers little-endian.  The manifest is human-readable (composition, segment table) and
// the type hash identifies the composed trainer type, so loading a checkpoint of another model
// or method fails with both descriptions in the message.  Writers go through
// io::write_atomically: the previous checkpoint survives any failure.  Readers check magic,
// version, CRC, hash and each section's size before touching any state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <zlib.h>

#include "auxl/core/arena.hpp"
#include "auxl/core/error.hpp"
#include "auxl/io/atomic_write.hpp"

namespace auxl::io {

inline constexpr char checkpoint_magic[8] = {'A', 'U', 'X', 'L', 'C', 'K', 'P', 'T'};
inline constexpr std::uint32_t checkpoint_format_version = 1;

namespace detail {
/// CRC-32 of a whole buffer.  crc32_z takes a size_t length: plain crc32's 32-bit length
/// would cover only the first 4 GiB of a large checkpoint and miss corruption beyond it.
inline std::uint32_t checksum(const char* data, std::size_t size) {
    return static_cast<std::uint32_t>(crc32_z(0L, reinterpret_cast<const Bytef*>(data), size));
}

template <class U>
void put(std::string& out, U value) {
    static_assert(std::is_trivially_copyable_v<U>);
    char bytes[sizeof(U)];
    std::memcpy(bytes, &value, sizeof(U));
    out.append(bytes, sizeof(U));
}
}  // namespace detail

/// Collects named sections, then writes them atomically.
class checkpoint_writer {
public:
    checkpoint_writer(std::uint64_t type_hash, std::string manifest) : hash_(type_hash), manifest_(std::move(manifest)) {}

    void add_bytes(const std::string& name, const void* data, std::size_t size) {
        detail::put<std::uint32_t>(body_, static_cast<std::uint32_t>(name.size()));
        body_ += name;
        detail::put<std::uint64_t>(body_, size);
        body_.append(static_cast<const char*>(data), size);
    }
    template <class T>
    void add(const std::string& name, const arena<T>& a) { add_bytes(name, a.data(), a.size() * sizeof(T)); }
    template <class T>
    void add(const std::string& name, const std::vector<T>& v) { add_bytes(name, v.data(), v.size() * sizeof(T)); }
    template <class U>
        requires std::is_arithmetic_v<U>
    void add(const std::string& name, const U& value) { add_bytes(name, &value, sizeof(U)); }

    /// The complete file contents.
    std::string bytes() const {
        std::string out(checkpoint_magic, sizeof(checkpoint_magic));
        detail::put<std::uint32_t>(out, checkpoint_format_version);
        detail::put<std::uint64_t>(out, hash_);
        detail::put<std::uint32_t>(out, static_cast<std::uint32_t>(manifest_.size()));
        out += manifest_;
        out += body_;
        const std::uint32_t crc = detail::checksum(out.data(), out.size());
        detail::put<std::uint32_t>(out, crc);
        return out;
    }

    void write(const std::filesystem::path& path) const {
        const std::string data = bytes();
        write_atomically(path, [&](std::ostream& out) { out.write(data.data(), std::streamsize(data.size())); });
    }

private:
    std::uint64_t hash_;
    std::string manifest_;
    std::string body_;
};

/// Reads and verifies a whole checkpoint, then serves its sections by name.
class checkpoint_reader {
public:
    checkpoint_reader(const std::filesystem::path& path, std::uint64_t expected_hash, const std::string& expected_manifest)
        : file_(path.string()) {
        std::ifstream in(path, std::ios::binary);
        if (!in) raise<io_error>("auxl: cannot open checkpoint ", file_);
        data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        constexpr std::size_t fixed = sizeof(checkpoint_magic) + 4 + 8 + 4 + 4;
        if (data_.size() < fixed) fail("size", "at least " + std::to_string(fixed) + " bytes", std::to_string(data_.size()) + " bytes");
        if (std::memcmp(data_.data(), checkpoint_magic, sizeof(checkpoint_magic)) != 0) fail("magic", "AUXLCKPT", "another file type");
        std::uint32_t stored_crc;
        std::memcpy(&stored_crc, data_.data() + data_.size() - 4, 4);
        const std::uint32_t crc = detail::checksum(data_.data(), data_.size() - 4);
        pos_ = sizeof(checkpoint_magic);
        const auto version = take<std::uint32_t>("version");
        if (version != checkpoint_format_version) {
            fail("version", std::to_string(checkpoint_format_version), std::to_string(version));
        }
        if (crc != stored_crc) fail("crc32", "a matching checksum", "a mismatch (the file is corrupt or truncated)");
        const auto hash = take<std::uint64_t>("type hash");
        const auto manifest_size = take<std::uint32_t>("manifest size");
        manifest_ = take_string(manifest_size, "manifest");
        if (hash != expected_hash) {
            raise<io_error>("auxl: checkpoint ", file_, " was written by another composition.\n  expected: ",
                            first_line(expected_manifest), "\n  found:    ", first_line(manifest_));
        }
        const std::size_t end = data_.size() - 4;
        while (pos_ < end) {
            const auto name_size = take<std::uint32_t>("section name size");
            const std::string name = take_string(name_size, "section name");
            const auto size = take<std::uint64_t>("section size");
            if (size > end - pos_) fail("section " + name, std::to_string(size) + " bytes", std::to_string(end - pos_));
            sections_[name] = {pos_, std::size_t(size)};
            pos_ += std::size_t(size);
        }
    }

    const std::string& manifest() const { return manifest_; }
    bool has(const std::string& name) const { return sections_.count(name) != 0; }
    std::size_t section_size(const std::string& name) const { return section(name).size; }

    void read_bytes(const std::string& name, void* out, std::size_t expected_size) const {
        const auto& s = section(name);
        if (s.size != expected_size) fail("section " + name, std::to_string(expected_size) + " bytes", std::to_string(s.size) + " bytes");
        if (s.size) std::memcpy(out, data_.data() + s.offset, s.size);  // out may be null for an empty section
    }
    /// Fills an arena; an empty arena is sized from the file (optimizer state not yet created).
    template <class T>
    void read(const std::string& name, arena<T>& a) const {
        const auto& s = section(name);
        if (a.size() == 0 && s.size > 0) a.resize(s.size / sizeof(T));
        read_bytes(name, a.data(), a.size() * sizeof(T));
    }
    template <class T>
    void read(const std::string& name, std::vector<T>& v) const {
        const auto& s = section(name);
        if (s.size % sizeof(T) != 0) fail("section " + name, "a multiple of " + std::to_string(sizeof(T)) + " bytes", std::to_string(s.size));
        v.resize(s.size / sizeof(T));
        read_bytes(name, v.data(), s.size);
    }
    template <class U>
        requires std::is_arithmetic_v<U>
    void read(const std::string& name, U& value) const { read_bytes(name, &value, sizeof(U)); }

private:
    struct span_info {
        std::size_t offset, size;
    };

    [[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& found) const {
        raise<io_error>("auxl: checkpoint ", file_, " field ", field, ": expected ", expected, ", found ", found);
    }
    const span_info& section(const std::string& name) const {
        auto it = sections_.find(name);
        if (it == sections_.end()) fail("section " + name, "present", "missing");
        return it->second;
    }
    template <class U>
    U take(const char* what) {
        if (data_.size() - 4 - pos_ < sizeof(U)) fail(what, std::to_string(sizeof(U)) + " bytes", "end of file");
        U value;
        std::memcpy(&value, data_.data() + pos_, sizeof(U));
        pos_ += sizeof(U);
        return value;
    }
    std::string take_string(std::size_t n, const char* what) {
        if (data_.size() - 4 - pos_ < n) fail(what, std::to_string(n) + " bytes", "end of file");
        std::string s(data_.data() + pos_, n);
        pos_ += n;
        return s;
    }
    static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

    std::string file_;
    std::string data_;
    std::string manifest_;
    std::size_t pos_ = 0;
    std::map<std::string, span_info> sections_;
};

/// FNV-1a over bytes (parameter checks across processes).
inline std::uint64_t bytes_hash(const void* data, std::size_t size) {
    std::uint64_t h = 0xCBF29CE484222325ull;
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
        h ^= bytes[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

/// FNV-1a over a text (type descriptions, segment tables).
inline std::uint64_t text_hash(const std::string& text) { return bytes_hash(text.data(), text.size()); }

}  // namespace auxl::io
