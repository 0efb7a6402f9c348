#include "crypto/sign.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

namespace runbookd::crypto {
namespace {

template <class T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using key_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;

std::optional<std::string> fail(std::string* error, const char* what) {
    if (error != nullptr) {
        *error = what;
    }
    ERR_clear_error();  // OpenSSL's queue may quote the key's PEM lines: not passed on
    return std::nullopt;
}

}  // namespace

std::optional<std::string> rs256_sign(std::string_view key_pem, std::string_view data, std::string* error) {
    bio_ptr bio{BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()))};
    if (!bio) {
        return fail(error, "out of memory");
    }
    key_ptr key{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
    if (!key) {
        return fail(error, "the private key is not a readable PEM key");
    }
    if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
        return fail(error, "the private key is not an RSA key");
    }
    md_ctx_ptr ctx{EVP_MD_CTX_new()};
    std::size_t size = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(
            ctx.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(data.data()), data.size()
        ) != 1) {
        return fail(error, "signing failed");
    }
    std::string signature(size, '\0');
    if (EVP_DigestSign(
            ctx.get(),
            reinterpret_cast<unsigned char*>(signature.data()),
            &size,
            reinterpret_cast<const unsigned char*>(data.data()),
            data.size()
        ) != 1) {
        return fail(error, "signing failed");
    }
    signature.resize(size);
    return signature;
}

}  // namespace runbookd::crypto
