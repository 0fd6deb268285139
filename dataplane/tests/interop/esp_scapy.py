#!/usr/bin/python3
"""Scapy's ESP (scapy.layers.ipsec) as an independent peer of the dataplane's ESP core.

Reads one case per line on stdin, as space-separated key=value pairs:
  op=encrypt|decrypt suite=gcm128-16|cbc256-sha256|gmac128|... mode=tunnel|transport
  outer=4|6 src=ADDR dst=ADDR spi=N seq=N (64-bit) esn=0|1 encap=PORT|0
  key=HEX auth=HEX data=HEX
and writes one line per case: "ok HEX" (the packet Scapy decrypted or encrypted) or "error TEXT".

Scapy 2.5 has no ENCR_NULL_AUTH_AES_GMAC (RFC 4543), and its AES-GCM cannot verify 8- or 12-byte
ICVs, so for those suites this script builds the ESP framing (headers, padding, trailer, NAT-T)
with Scapy's NULL transform and does the crypto itself with python3-cryptography (OpenSSL):
GMAC per RFC 4543 3 (empty plaintext, AAD = SPI, [ESN high], sequence number, IV, payload,
padding, pad length, next header), truncated GCM per RFC 4106 (leftmost ICV bytes of the tag).
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation


def parse(line):
    return dict(kv.split("=", 1) for kv in line.split())


def custom(suite):
    """Suites this script computes itself: GMAC, and GCM with a truncated ICV, which Scapy 2.5's
    AES-GCM (python3-cryptography's AESGCM, 16-byte tags only) cannot verify."""
    return suite.startswith("gmac") or (suite.startswith("gcm") and not suite.endswith("-16"))


def hmac_with_esn(c):
    """Scapy 2.5 leaves the ESN high bits out of the ESP HMAC (it adds them for AH only), against
    RFC 4303 2.2.1; for CBC with ESN this script computes the ICV itself. (digest, ICV length)"""
    if c["suite"].startswith("cbc") and c["esn"] == "1":
        return {"sha1": (hashlib.sha1, 12), "sha256": (hashlib.sha256, 16)}[c["suite"].split("-")[1]]
    return None


def esp_hmac(c, esp_bytes):
    digest, n = hmac_with_esn(c)
    return hmac.new(bytes.fromhex(c["auth"]), esp_bytes + esn_high(c), digest).digest()[:n]


def algos(suite):
    if custom(suite):
        return dict(crypt_algo="NULL", auth_algo="NULL")  # framing only, see above
    if suite.startswith("gcm"):
        return dict(crypt_algo="AES-GCM", crypt_icv_size=int(suite.split("-")[1]), auth_algo="NULL")
    if suite.startswith("cbc"):
        auth = {"sha1": "HMAC-SHA1-96", "sha256": "SHA2-256-128"}[suite.split("-")[1]]
        return dict(crypt_algo="AES-CBC", auth_algo=auth)


def make_sa(c):
    seq = int(c["seq"])
    ip = IPv6 if c["outer"] == "6" else IP
    kwargs = algos(c["suite"])
    if hmac_with_esn(c):
        kwargs["auth_algo"] = "NULL"
    if not custom(c["suite"]):
        kwargs["crypt_key"] = bytes.fromhex(c["key"])
        if c["auth"] and not hmac_with_esn(c):
            kwargs["auth_key"] = bytes.fromhex(c["auth"])
    if c["mode"] == "tunnel":
        kwargs["tunnel_header"] = ip(src=c["src"], dst=c["dst"])
    port = int(c["encap"])
    if port:
        kwargs["nat_t_header"] = UDP(sport=port, dport=port)
    return SecurityAssociation(ESP, spi=int(c["spi"]), seq_num=seq & 0xFFFFFFFF,
                               esn_en=c["esn"] == "1", esn=seq >> 32, **kwargs), ip


def keys(c):
    key = bytes.fromhex(c["key"])
    return key[:-4], key[-4:]


def esn_high(c):
    return struct.pack("!L", int(c["seq"]) >> 32) if c["esn"] == "1" else b""


def custom_seal(c, spi_seq, payload):
    """IV, ciphertext (or plaintext for GMAC) and ICV of the ESP payload."""
    aes, salt = keys(c)
    iv = os.urandom(8)
    if c["suite"].startswith("gmac"):
        # RFC 4543 3.3: the AAD is the whole packet; the plaintext is empty.
        aad = spi_seq[:4] + esn_high(c) + spi_seq[4:] + iv + payload
        return iv + payload + AESGCM(aes).encrypt(salt + iv, b"", aad)
    icv_len = int(c["suite"].split("-")[1])
    enc = Cipher(algorithms.AES(aes), modes.GCM(salt + iv)).encryptor()
    enc.authenticate_additional_data(spi_seq[:4] + esn_high(c) + spi_seq[4:])
    ct = enc.update(payload) + enc.finalize()
    return iv + ct + enc.tag[:icv_len]


def custom_open(c, spi_seq, data):
    """The plaintext payload, after verifying the ICV."""
    aes, salt = keys(c)
    iv = data[:8]
    if c["suite"].startswith("gmac"):
        payload, icv = data[8:-16], data[-16:]
        aad = spi_seq[:4] + esn_high(c) + spi_seq[4:] + iv + payload
        if AESGCM(aes).encrypt(salt + iv, b"", aad) != icv:
            raise ValueError("GMAC ICV mismatch")
        return payload
    icv_len = int(c["suite"].split("-")[1])
    ct, icv = data[8:-icv_len], data[-icv_len:]
    dec = Cipher(algorithms.AES(aes), modes.GCM(salt + iv, icv, min_tag_length=icv_len)).decryptor()
    dec.authenticate_additional_data(spi_seq[:4] + esn_high(c) + spi_seq[4:])
    return dec.update(ct) + dec.finalize()


def rebuilt(pkt):
    """Recomputes lengths and checksums after the ESP payload changed."""
    for layer in (IP, IPv6, UDP):
        if layer in pkt:
            for f in ("len", "plen", "chksum"):
                if f in pkt[layer].fields and not (layer is UDP and f == "chksum"):
                    delattr(pkt[layer], f)  # also drops Scapy's cached bytes
    return pkt.__class__(bytes(pkt))


def encrypt(c):
    sa, ip = make_sa(c)
    plain = bytes.fromhex(c["data"])
    inner = (IPv6 if plain[0] >> 4 == 6 else IP)(plain)
    pkt = sa.encrypt(inner)
    if custom(c["suite"]):
        esp = pkt[ESP]
        esp.data = custom_seal(c, struct.pack("!LL", esp.spi, esp.seq), esp.data)
    if hmac_with_esn(c):
        esp = pkt[ESP]
        esp.data += esp_hmac(c, struct.pack("!LL", esp.spi, esp.seq) + esp.data)
    # Scapy 2.5 leaves the UDP length of nat_t_header at 8; rebuilt() recomputes it.
    return bytes(rebuilt(pkt))


def decrypt(c):
    sa, ip = make_sa(c)
    pkt = ip(bytes.fromhex(c["data"]))
    if custom(c["suite"]):
        esp = pkt[ESP]
        # The NULL transform below takes the plaintext payload without IV and ICV.
        esp.data = custom_open(c, struct.pack("!LL", esp.spi, esp.seq), esp.data)
        pkt = rebuilt(pkt)
    if hmac_with_esn(c):
        esp = pkt[ESP]
        n = hmac_with_esn(c)[1]
        if esp_hmac(c, struct.pack("!LL", esp.spi, esp.seq) + esp.data[:-n]) != esp.data[-n:]:
            raise ValueError("HMAC ICV mismatch")
        esp.data = esp.data[:-n]
        pkt = rebuilt(pkt)
    out = bytes(sa.decrypt(pkt))
    if c["mode"] == "transport" and int(c["encap"]) and c["outer"] == "6":
        # Scapy 2.5 removes the ESP header but keeps the NAT-T UDP header in IPv6 transport mode
        # (the next header is already set to the payload's); drop those 8 bytes and fix the length.
        out = out[:4] + struct.pack("!H", len(out) - 48) + out[6:40] + out[48:]
    return out


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        c = parse(line)
        try:
            out = encrypt(c) if c["op"] == "encrypt" else decrypt(c)
            print("ok", out.hex(), flush=True)
        except Exception as e:  # reported to the Rust test, which fails on it
            print("error", type(e).__name__, str(e).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
