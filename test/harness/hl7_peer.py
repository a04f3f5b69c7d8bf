#!/usr/bin/python3
"""An HL7 v2 peer for raddraft's tests, built on Debian's python3-hl7 (an implementation independent of raddraft's).

serve: an MLLP server (hl7.mllp asyncio server). Every message it receives is parsed with hl7.parse and logged as one
  JSON line (control ID, type, every segment's fields, the answer given). The answer comes from a control file re-read
  for each message: {"answers": ["AE", "AE", "AA"], "text": "..."} gives the n-th copy of a control ID the n-th answer
  (the last one repeats); an answer may be AA, AE, AR, CA+AA (commit ACK, then the application ACK), CA (only a commit
  ACK) or none (no answer at all). Prints "listening PORT" once it listens.
send: sends the messages of a file (or raw bytes, for hostile input) to an MLLP server with hl7.client's MLLPClient,
  parses each answer with hl7.parse and prints (and logs) the exchange as JSON.
"""
import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
import time

import hl7
import hl7.mllp
from hl7.client import MLLPClient


def fields_of(segment):
    """A segment's fields as strings, numbered as HL7 numbers them (MSH-1 is the field separator)."""
    return [str(f) for f in segment]


def describe(message):
    msh = message.segment("MSH")
    segments = [fields_of(s) for s in message]
    out = {
        "control_id": str(msh[10]),
        "type": str(msh[9]),
        "version": str(msh[12]),
        "segments": segments,
    }
    obr = [s for s in message if str(s[0]) == "OBR"]
    if obr:
        out["obr25"] = str(obr[0][25])
        out["obr32"] = str(obr[0][32]) if len(obr[0]) > 32 else ""
    out["obx11"] = [str(s[11]) for s in message if str(s[0]) == "OBX"]
    out["obx5"] = [hl7_unescape(message, str(s[5])) for s in message if str(s[0]) == "OBX"]
    out["pid3"] = [str(s[3]) for s in message if str(s[0]) == "PID"]
    return out


def hl7_unescape(message, value):
    try:
        return message.unescape(value)
    except Exception:  # noqa: BLE001 -- a value the library cannot unescape is logged as it came
        return value


def read_control(path):
    if not path or not os.path.exists(path):
        return {"answers": ["AA"]}
    with open(path) as f:
        return json.load(f)


def log_line(path, entry):
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def ack_of(message, code, text):
    ack = message.create_ack(ack_code=code, application="PEER", facility="PEER")
    if code not in ("AA", "CA") and text:
        ack.segment("MSA").assign_field(text, 3)
        ack.append(ack.create_segment([ack.create_field(["ERR"])]))
        err = ack.segments("ERR")[0]
        err.assign_field("207", 3, 1, 1)
        err.assign_field(text, 3, 1, 2)
        err.assign_field("E", 4)
    return ack


async def serve(args):
    seen = {}
    connections = [0]

    async def on_client(reader, writer):
        connections[0] += 1
        connection = connections[0]
        try:
            while not writer.is_closing():
                try:
                    message = await reader.readmessage()
                except asyncio.IncompleteReadError:
                    break
                entry = describe(message)
                n = seen.get(entry["control_id"], 0)
                seen[entry["control_id"]] = n + 1
                control = read_control(args.control)
                answers = control.get("answers") or ["AA"]
                answer = answers[min(n, len(answers) - 1)]
                entry.update({"answer": answer, "copy": n + 1, "connection": connection, "at": time.time(), "raw": str(message)})
                log_line(args.log, entry)
                if answer == "none":
                    continue
                for code in answer.split("+"):
                    writer.writemessage(ack_of(message, code, control.get("text", "")))
                    await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            writer.close()

    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    server = await hl7.mllp.start_hl7_server(on_client, host="127.0.0.1", port=args.port, encoding="utf-8", ssl=context)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


def read_answer(sock, timeout):
    """Bytes until an MLLP end of block (or the peer closes, or the timeout)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while not data.endswith(b"\x1c\x0d"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def parse_answer(data):
    text = data.strip(b"\x0b\x1c\x0d").decode("utf-8", "replace")
    if not text.startswith("MSH"):
        return {"closed": not data, "raw": text}
    ack = hl7.parse(text)
    msa = fields_of(ack.segment("MSA"))
    errs = [fields_of(s) for s in ack if str(s[0]) == "ERR"]
    # Free text (MSA-3, ERR-8) as the sender meant it: HL7 escape sequences resolved.
    if len(msa) > 3:
        msa[3] = hl7_unescape(ack, msa[3])
    for err in errs:
        if len(err) > 8:
            err[8] = hl7_unescape(ack, err[8])
    return {"raw": text, "msa": msa, "err": errs}


def send(args):
    with open(args.file, "rb") as f:
        payload = f.read()
    results = []
    if args.raw:
        # Hostile input goes as it is, framed or not, through a plain socket.
        with socket.create_connection((args.host, args.port)) as sock:
            try:
                sock.sendall(payload)
            except (ConnectionResetError, BrokenPipeError):
                pass
            results.append(parse_answer(read_answer(sock, args.timeout)))
    else:
        with MLLPClient(args.host, args.port) as client:
            for message in payload.decode("utf-8").split("\n\n"):
                if not message.strip():
                    continue
                client.socket.settimeout(args.timeout)
                try:
                    answer = client.send_message(message.strip("\n").replace("\n", "\r"))
                except socket.timeout:
                    answer = b""
                results.append(parse_answer(answer))
                results[-1]["sent"] = message
    for r in results:
        if args.log:
            log_line(args.log, r)
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--log", required=True)
    s.add_argument("--control")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    c = sub.add_parser("send")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--file", required=True)
    c.add_argument("--raw", action="store_true")
    c.add_argument("--timeout", type=float, default=10)
    c.add_argument("--log")
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args))
    else:
        send(args)


if __name__ == "__main__":
    main()
