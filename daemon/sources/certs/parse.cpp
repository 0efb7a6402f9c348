#include "sources/certs/parse.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <ctime>
#include <limits>
#include <memory>

namespace runbookd::sources::certs {

namespace {

constexpr std::string_view pem_begin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view pem_end = "-----END CERTIFICATE-----";

/// Cuts `text` to max_name_chars, on a UTF-8 character boundary, marking the cut.
std::string capped(std::string text) {
    if (text.size() <= max_name_chars) {
        return text;
    }
    std::size_t cut = max_name_chars - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
        --cut;  // do not split a multi-byte character
    }
    text.resize(cut);
    return text + "...";
}

/// An attribute value escaped as RFC 4514 asks, control bytes as \XX.
std::string escape_value(std::string_view v) {
    static constexpr std::string_view hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto c = static_cast<unsigned char>(v[i]);
        const bool edge_space = c == ' ' && (i == 0 || i + 1 == v.size());
        if (c < 0x20U || c == 0x7FU) {
            out += '\\';
            out += hex[c >> 4U];
            out += hex[c & 0x0FU];
        } else if (std::string_view{",+\"\\<>;"}.find(static_cast<char>(c)) != std::string_view::npos || edge_space || (i == 0 && c == '#')) {
            out += '\\';
            out += static_cast<char>(c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

/// "CN=<value>" for the last (most specific) CN, else the RFC 2253 one-line name.
std::string name_text(const X509_NAME* name) {
    if (name == nullptr) {
        return {};
    }
    int last = -1;
    for (int i = ::X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
         i = ::X509_NAME_get_index_by_NID(name, NID_commonName, i)) {
        last = i;
    }
    if (last >= 0) {
        const ASN1_STRING* data = ::X509_NAME_ENTRY_get_data(::X509_NAME_get_entry(name, last));
        unsigned char* utf8 = nullptr;
        const int n = ::ASN1_STRING_to_UTF8(&utf8, data);
        if (n >= 0) {
            std::string value{reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n)};
            ::OPENSSL_free(utf8);
            return capped("CN=" + escape_value(value));
        }
    }
    // No CN (or an undecodable one): the whole name, UTF-8 kept readable, controls escaped.
    std::unique_ptr<BIO, decltype(&::BIO_free)> bio{::BIO_new(::BIO_s_mem()), ::BIO_free};
    if (!bio || ::X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        return {};
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? capped(std::string{data, static_cast<std::size_t>(n)}) : std::string{};
}

wall_time time_of(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ::ASN1_TIME_to_tm(t, &tm) != 1) {
        return wall_time{};
    }
    using namespace std::chrono;
    const year_month_day date{
        year{tm.tm_year + 1900},
        month{static_cast<unsigned>(tm.tm_mon + 1)},
        day{static_cast<unsigned>(tm.tm_mday)}};
    return wall_time{sys_days{date}} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
    const unsigned char* bytes = ::ASN1_STRING_get0_data(ip);
    const int n = ::ASN1_STRING_length(ip);
    std::array<char, INET6_ADDRSTRLEN> buf{};
    if (n == 4 && ::inet_ntop(AF_INET, bytes, buf.data(), buf.size()) != nullptr) {
        return buf.data();
    }
    if (n == 16 && ::inet_ntop(AF_INET6, bytes, buf.data(), buf.size()) != nullptr) {
        return buf.data();
    }
    return {};
}

/// A DNS name as written, any byte outside printable ASCII replaced (IA5String is ASCII).
std::string dns_text(const ASN1_IA5STRING* s) {
    const unsigned char* bytes = ::ASN1_STRING_get0_data(s);
    const int n = ::ASN1_STRING_length(s);
    std::string out;
    for (int i = 0; i < n; ++i) {
        const unsigned char c = bytes[i];
        out += c > 0x20U && c < 0x7FU ? static_cast<char>(c) : '?';
    }
    return capped(std::move(out));
}

/// The DNS names, then the IP addresses, of the subjectAltName extension.
void read_sans(const X509& cert, cert_info& out) {
    auto* names =
        static_cast<GENERAL_NAMES*>(::X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr));
    if (names == nullptr) {
        ::ERR_clear_error();
        return;
    }
    const std::unique_ptr<GENERAL_NAMES, decltype(&::GENERAL_NAMES_free)> owned{names, ::GENERAL_NAMES_free};
    const auto* stack = reinterpret_cast<const OPENSSL_STACK*>(names);
    const int count = ::OPENSSL_sk_num(stack);
    std::vector<std::string> ips;
    for (const int wanted : {GEN_DNS, GEN_IPADD}) {
        for (int i = 0; i < count; ++i) {
            const auto* gn = static_cast<const GENERAL_NAME*>(::OPENSSL_sk_value(stack, i));
            if (gn == nullptr || gn->type != wanted) {
                continue;
            }
            std::string text = wanted == GEN_DNS ? dns_text(gn->d.dNSName) : ip_text(gn->d.iPAddress);
            if (text.empty()) {
                continue;
            }
            if (out.sans.size() < max_sans) {
                out.sans.push_back(std::move(text));
            } else {
                ++out.sans_left_out;
            }
        }
    }
}

std::size_t earliest_of(const std::vector<cert_info>& certs) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < certs.size(); ++i) {
        if (certs[i].not_after < certs[best].not_after) {
            best = i;
        }
    }
    return best;
}

}  // namespace

cert_info read_certificate(const x509_st& cert, int depth) {
    cert_info info;
    info.subject = name_text(::X509_get_subject_name(&cert));
    info.issuer = name_text(::X509_get_issuer_name(&cert));
    info.not_before = time_of(::X509_get0_notBefore(&cert));
    info.not_after = time_of(::X509_get0_notAfter(&cert));
    info.depth = depth;
    read_sans(cert, info);
    return info;
}

std::string subject_of(const x509_st& cert) {
    return name_text(::X509_get_subject_name(&cert));
}

result<chain_info> read_chain(const stack_st_X509* chain) {
    const auto* stack = reinterpret_cast<const OPENSSL_STACK*>(chain);
    const int n = chain == nullptr ? 0 : ::OPENSSL_sk_num(stack);
    if (n <= 0) {
        return make_failure(errc::parse_failed, "no certificate was sent");
    }
    chain_info out;
    for (int i = 0; i < n; ++i) {
        if (out.certs.size() == max_chain_certificates) {
            out.left_out = static_cast<std::size_t>(n - i);
            break;
        }
        const auto* cert = static_cast<const X509*>(::OPENSSL_sk_value(stack, i));
        if (cert != nullptr) {
            out.certs.push_back(read_certificate(*cert, static_cast<int>(out.certs.size())));
        }
    }
    if (out.certs.empty()) {
        return make_failure(errc::parse_failed, "no certificate was sent");
    }
    out.earliest = earliest_of(out.certs);
    return out;
}

result<chain_info> read_pem_chain(std::string_view pem) {
    chain_info out;
    std::size_t at = 0;
    while ((at = pem.find(pem_begin, at)) != std::string_view::npos) {
        const auto end = pem.find(pem_end, at);
        if (end == std::string_view::npos) {
            return make_failure(errc::parse_failed, "a CERTIFICATE block has no END line");
        }
        const std::string_view block = pem.substr(at, end + pem_end.size() - at);
        at = end + pem_end.size();
        if (out.certs.size() == max_chain_certificates) {
            ++out.left_out;  // counted, not parsed: the cap bounds the work
            continue;
        }
        if (block.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
            return make_failure(errc::parse_failed, "a CERTIFICATE block is too large");
        }
        std::unique_ptr<BIO, decltype(&::BIO_free)> bio{
            ::BIO_new_mem_buf(block.data(), static_cast<int>(block.size())), ::BIO_free};
        std::unique_ptr<X509, decltype(&::X509_free)> cert{
            bio ? ::PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, ::X509_free};
        if (!cert) {
            ::ERR_clear_error();
            return make_failure(
                errc::parse_failed, "certificate " + std::to_string(out.certs.size() + 1) + " is malformed"
            );
        }
        out.certs.push_back(read_certificate(*cert, static_cast<int>(out.certs.size())));
    }
    if (out.certs.empty()) {
        return make_failure(errc::parse_failed, "no CERTIFICATE block in the PEM text");
    }
    out.earliest = earliest_of(out.certs);
    return out;
}

}  // namespace runbookd::sources::certs
