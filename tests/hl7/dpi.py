#!/usr/bin/env python3
"""A hospital DPI played by python-hl7 (PyPI `hl7`, installed by scripts/install-deps.sh into
tests/hl7/pylib), an HL7 v2 implementation nobody here wrote: its parser reads the messages and
acknowledgements, its asyncio MLLP streams carry them.

  dpi.py send HOST PORT FILE [--flag NAME=Y|N]... [--replace OLD=NEW]... [--control-id ID]
         [--drop-ack] [--repeat N]
      Sends FILE (an agency example, edited as asked) and prints one JSON line per acknowledgement:
      {"msa1", "msa2", "err2", "err3", "err5", "err8", "msh9"}. --drop-ack closes the connection
      without reading the answer (a lost ACK). --repeat sends it N times on one connection, a new
      MSH-10 each time (prints only a summary: {"sent", "aa", "seconds"}).
  dpi.py serve PORT_FILE OUT_DIR [--answer-file FILE]
      Listens on 127.0.0.1 (port written to PORT_FILE), writes each message received to OUT_DIR
      (N.hl7 and N.json: its type, MSH-5/6, MSH-10, PID-3, EVN-2, each OBX and ERR, PRT summary),
      and answers with the acknowledgement code of --answer-file (AA, AR, or AE:902 for an ERR with
      application code 902), AA when absent.
"""
import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pylib"))
import hl7  # noqa: E402
from hl7.mllp import open_hl7_connection, start_hl7_server  # noqa: E402

LIMIT = 64 * 1024 * 1024


def field(msg, seg, f, c=1, r=1):
    try:
        return str(msg.extract_field(seg, 1, f, r, c))
    except Exception:
        return ""


def edit(text, flags, replace, control_id):
    out = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            continue
        for old, new in replace:
            line = line.replace(old, new)
        f = line.split("|")
        if f[0] == "MSH" and control_id is not None:
            f[9] = control_id  # MSH-10: MSH-1 is the separator itself
        if f[0] == "OBX" and len(f) > 5 and f[3].split("^")[0] in flags:
            f[5] = flags[f[3].split("^")[0]] + "^^expandedYes-NoIndicator"
        out.append("|".join(f))
    return "\r".join(out) + "\r"


def summary(ack):
    return {
        "msh9": field(ack, "MSH", 9) + "^" + field(ack, "MSH", 9, 2),
        "msa1": field(ack, "MSA", 1),
        "msa2": field(ack, "MSA", 2),
        "err2": "^".join(field(ack, "ERR", 2, c) for c in (1, 2, 3)) if _has(ack, "ERR") else "",
        "err3": field(ack, "ERR", 3) if _has(ack, "ERR") else "",
        "err5": field(ack, "ERR", 5) if _has(ack, "ERR") else "",
        "err8": field(ack, "ERR", 8) if _has(ack, "ERR") else "",
    }


def _has(msg, name):
    try:
        return bool(msg.segments(name))
    except KeyError:
        return False


async def send(args):
    text = open(args.file, encoding="utf-8").read()
    flags = dict(x.split("=", 1) for x in args.flag)
    replace = [tuple(x.split("=", 1)) for x in args.replace]
    reader, writer = await open_hl7_connection(
        args.host, args.port, encoding="utf-8", limit=LIMIT
    )
    if args.repeat:
        start = time.monotonic()
        aa = 0
        for i in range(args.repeat):
            msg = hl7.parse(edit(text, flags, replace, f"{args.control_id or 'B'}{i}"))
            writer.writemessage(msg)
            await writer.drain()
            ack = await reader.readmessage()
            aa += field(ack, "MSA", 1) == "AA"
        print(json.dumps({"sent": args.repeat, "aa": aa, "seconds": time.monotonic() - start}))
    else:
        msg = hl7.parse(edit(text, flags, replace, args.control_id))
        writer.writemessage(msg)
        await writer.drain()
        if args.drop_ack:
            print(json.dumps({"dropped": str(msg.extract_field("MSH", 1, 10))}))
        else:
            ack = await reader.readmessage()
            print(json.dumps(summary(ack)))
    writer.close()


async def serve(args):
    count = 0

    async def client(reader, writer):
        nonlocal count
        try:
            while not reader.at_eof():
                msg = await reader.readmessage()
                count += 1
                n = count
                with open(os.path.join(args.out, f"{n}.hl7"), "w", encoding="utf-8") as f:
                    f.write(str(msg))
                info = {
                    "type": field(msg, "MSH", 9) + "^" + field(msg, "MSH", 9, 2),
                    "control_id": field(msg, "MSH", 10),
                    "profile": field(msg, "MSH", 21, 2),
                    "pid3": field(msg, "PID", 3),
                    "pv1_2": field(msg, "PV1", 2),
                    "orc1": field(msg, "ORC", 1),
                    "obr4": field(msg, "OBR", 4),
                    "obx3": [str(s[3]).split("^")[0] for s in msg.segments("OBX")]
                    if _has(msg, "OBX") else [],
                    "prt": [[str(s[4]).split("^")[0], str(s[15]).split("^")[3] if len(str(s[15]).split("^")) > 3 else ""]
                            for s in msg.segments("PRT")] if _has(msg, "PRT") else [],
                    "receiver": [field(msg, "MSH", 5), field(msg, "MSH", 6)],
                    "evn2": field(msg, "EVN", 2) if _has(msg, "EVN") else "",
                    # each OBX as python-hl7 splits it: OBX-2, OBX-3, OBX-4, OBX-5 (components), OBX-11
                    "obx": [[str(s[2]), str(s[3]), str(s[4]), str(s[5]).split("^"), str(s[11])]
                            for s in msg.segments("OBX")] if _has(msg, "OBX") else [],
                    "err": [[str(s[3]), str(s[4]), str(s[5])] for s in msg.segments("ERR")]
                    if _has(msg, "ERR") else [],
                }
                with open(os.path.join(args.out, f"{n}.json"), "w", encoding="utf-8") as f:
                    json.dump(info, f)
                answer = "AA"
                if args.answer_file and os.path.exists(args.answer_file):
                    answer = open(args.answer_file).read().strip() or "AA"
                code, _, app = answer.partition(":")
                event = field(msg, "MSH", 9, 2)
                ack = (
                    f"MSH|^~\\&|DPI|HOP|{field(msg, 'MSH', 3)}|{field(msg, 'MSH', 4)}|"
                    f"{time.strftime('%Y%m%d%H%M%S')}||ACK^{event}^ACK|D{n}|P|2.6|||||FRA|UNICODE UTF-8\r"
                    f"MSA|{code}|{field(msg, 'MSH', 10)}\r"
                )
                if app:
                    ack += f"ERR||PID^1^3|207^Application error^HL70357|E|{app}^Identifiant patient inconnu^HL70533\r"
                writer.writemessage(hl7.parse(ack))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await start_hl7_server(client, "127.0.0.1", 0, encoding="utf-8", limit=LIMIT)
    port = server.sockets[0].getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    async with server:
        await server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("host")
    s.add_argument("port", type=int)
    s.add_argument("file")
    s.add_argument("--flag", action="append", default=[])
    s.add_argument("--replace", action="append", default=[])
    s.add_argument("--control-id")
    s.add_argument("--drop-ack", action="store_true")
    s.add_argument("--repeat", type=int, default=0)
    v = sub.add_parser("serve")
    v.add_argument("port_file")
    v.add_argument("out")
    v.add_argument("--answer-file")
    args = p.parse_args()
    asyncio.run(send(args) if args.cmd == "send" else serve(args))


if __name__ == "__main__":
    main()
