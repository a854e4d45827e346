// Stands in for a CPU without AES instructions. Preloaded (LD_PRELOAD) into
// a test, this definition comes before libsodium's, so every call to it,
// from the library or the test, hears "no AES-GCM here": the nodes then
// offer and choose ChaCha20-Poly1305 only, and AES-GCM refuses to start, as
// on such a CPU (tests/CMakeLists.txt, the "_without_aes" tests).

extern "C" int crypto_aead_aes256gcm_is_available(void) {
  return 0;
}
