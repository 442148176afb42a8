"""A tiny DNS server playing the host's resolver in the network tests: run inside the host
side's namespace on 127.0.0.53:53. It answers A questions for names under `.example` with
192.0.2.2 (the outside namespace) and NXDOMAIN for anything else, and exits after 120 s."""

import socket
import struct
import sys
import time

ANSWER = bytes([192, 0, 2, 2])


def name_of(query: bytes) -> tuple[str, int]:
    labels, i = [], 12
    while query[i]:
        n = query[i]
        labels.append(query[i + 1 : i + 1 + n].decode())
        i += 1 + n
    return ".".join(labels).lower(), i + 5  # the end of the question (name, type, class)


def main() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1] if len(sys.argv) > 1 else "127.0.0.53", 53))
    s.settimeout(1)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            query, client = s.recvfrom(512)
        except TimeoutError:
            continue
        name, qend = name_of(query)
        qtype = struct.unpack("!H", query[qend - 4 : qend - 2])[0]
        ours = name.endswith(".example")
        flags = 0x8180 if ours else 0x8183
        answers = 1 if ours and qtype == 1 else 0
        reply = query[:2] + struct.pack("!HHHHH", flags, 1, answers, 0, 0) + query[12:qend]
        if answers:
            reply += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + ANSWER
        s.sendto(reply, client)


if __name__ == "__main__":
    main()
