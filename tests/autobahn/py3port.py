#!/usr/bin/env python3
"""Port the unpacked sdists of autobahntestsuite 25.10.1 (Python 2 only) and
autobahn 0.10.9 to Python 3, enough for `wstest -m fuzzingclient|fuzzingserver`.

Usage: py3port.py TESTSUITE_SDIST_DIR AUTOBAHN_SDIST_DIR     (run by setup.sh)

1. 2to3 (the `fissix` fork of lib2to3) over the testsuite package.
2. Payloads stay Python-2 style `str` literals, read as a latin-1 view of bytes:
   literals with raw non-ASCII characters (UTF-8 bytes to Python 2) become \\xNN
   escapes, and a small helper module (autobahntestsuite/py3compat.py) converts
   str -> bytes where payloads enter autobahn and when comparing events.
3. Python 3 fixes in the reports (bytes in JSON/HTML, text files), integer
   division, new-style class MROs, zope `implements`, pkg_resources, and a few
   autobahn 0.10.9 bugs on code paths only the testsuite uses.
4. Not Python 3 fixes: the fuzzing server binds spec["interface"] (default
   127.0.0.1) instead of all interfaces, and an interrupted fuzzingclient run
   (SIGINT/SIGTERM) writes the reports of the cases completed so far.

Every edit asserts how often its anchor occurs, so a changed upstream package
makes setup fail loudly instead of yielding a half-ported testsuite.
"""
import logging
import os
import sys

PY3COMPAT = '''"""Python 3 helpers added by wsflow's tests/autobahn/py3port.py (not upstream).

The cases write payloads as str literals that were byte strings in Python 2;
after 2to3 they are str whose code points are the byte values (latin-1 view).
"""
import binascii
import importlib
import os


def to_bytes(x):
    if isinstance(x, str):
        try:
            return x.encode("latin-1")
        except UnicodeEncodeError:
            return x.encode("utf-8")
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    return x


def normalize(obj):
    """str/bytearray leaves -> bytes, recursively (to compare events)."""
    if isinstance(obj, (str, bytearray, memoryview)):
        return to_bytes(obj)
    if isinstance(obj, tuple):
        return tuple(normalize(o) for o in obj)
    if isinstance(obj, list):
        return [normalize(o) for o in obj]
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in obj.items()}
    return obj


def to_text(x):
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", "backslashreplace")
    return x


def jsonable(obj):
    if isinstance(obj, (bytes, bytearray)):
        return to_text(obj)
    if isinstance(obj, (list, tuple)):
        return [jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    return obj


def b2a_hex(x):
    return binascii.b2a_hex(to_bytes(x)).decode("ascii")


def utf8_view(x):
    return to_bytes(x).decode("utf-8", "replace")


def resource_filename(package, resource):
    """Stand-in for pkg_resources.resource_filename."""
    mod = importlib.import_module(package)
    return os.path.join(os.path.dirname(mod.__file__), *resource.split("/"))
'''

# Overrides in the FuzzingProtocol mixin (before autobahn's protocol in the MRO).
SEND_SHIM = '''
   ## --- py3port: accept Python-2 style str payloads (latin-1 view of bytes) ---
   def sendFrame(self, opcode, payload = b'', *args, **kwargs):
      return super(FuzzingProtocol, self).sendFrame(opcode, to_bytes(payload), *args, **kwargs)

   def sendMessage(self, payload, *args, **kwargs):
      return super(FuzzingProtocol, self).sendMessage(to_bytes(payload), *args, **kwargs)

   def sendMessageFrameData(self, payload, *args, **kwargs):
      return super(FuzzingProtocol, self).sendMessageFrameData(to_bytes(payload), *args, **kwargs)

   def sendMessageFrame(self, payload, *args, **kwargs):
      return super(FuzzingProtocol, self).sendMessageFrame(to_bytes(payload), *args, **kwargs)

   def sendPing(self, payload = None):
      return super(FuzzingProtocol, self).sendPing(to_bytes(payload))

   def sendPong(self, payload = None):
      return super(FuzzingProtocol, self).sendPong(to_bytes(payload))

   def sendCloseFrame(self, code = None, reasonUtf8 = None, isReply = False):
      return super(FuzzingProtocol, self).sendCloseFrame(code, to_bytes(reasonUtf8), isReply)

   def sendData(self, data, *args, **kwargs):
      return super(FuzzingProtocol, self).sendData(to_bytes(data), *args, **kwargs)

'''

MIXIN_HEAD = '''class FuzzingProtocol:
   """
   Common mixin-base class for fuzzing server and client protocols.
   """
'''

CREATE_REPORTS = '''   def createReports(self, produceHtml = True, produceJson = True):
      """
      Create reports from all data stored for test cases which have been executed.
      """
'''

START_CLIENT = '''      self.currServer = -1
      if self.nextServer():
         if self.nextCase():
            connectWS(self, contextFactory=self.contextFactory)
'''

REPORTS_ON_SHUTDOWN = '''

   def _reportsOnShutdown(self):
      if self.agents and not getattr(self, '_reportsWritten', False):
         print("Run interrupted: writing reports for the %d case(s) completed so far."
               % sum(len(v) for v in self.agents.values()))
         self.createReports()
'''

BIN_LOG_OLD = '''def binLogData(data, maxlen = 64):
   ellipses = " ..."
   if len(data) > maxlen - len(ellipses):
      dd = binascii.b2a_hex(data[:maxlen]) + ellipses
   else:
      dd = binascii.b2a_hex(data)
   return dd'''

BIN_LOG_NEW = '''def binLogData(data, maxlen = 64):
   ellipses = " ..."
   if len(data) > maxlen - len(ellipses):
      dd = _py3_b2a_hex(data[:maxlen]) + ellipses
   else:
      dd = _py3_b2a_hex(data)
   return dd'''

PKG_RES = "from autobahntestsuite import py3compat as pkg_resources\n"

# (file relative to the package dir, old, new, expected count of old)
TESTSUITE_EDITS = [
    # case base class: compare events independent of str/bytes
    ("case/case.py", "import pickle\n", "import pickle\n\nfrom autobahntestsuite.py3compat import normalize\n", 1),
    ("case/case.py", "return pickle.dumps(obj1) == pickle.dumps(obj2)",
     "return pickle.dumps(normalize(obj1), 2) == pickle.dumps(normalize(obj2), 2)", 1),
    # show the valid UTF-8 payloads of 6.2.x as text in the descriptions
    ("case/case6_2_1.py", "% (PAYLOAD, _py3_b2a_hex(PAYLOAD))", "% (_py3_utf8(PAYLOAD), _py3_b2a_hex(PAYLOAD))", 1),
    ("case/case6_2_3.py", "% (PAYLOAD, _py3_b2a_hex(PAYLOAD))", "% (_py3_utf8(PAYLOAD), _py3_b2a_hex(PAYLOAD))", 1),
    ("case/case6_2_4.py", "% (PAYLOAD, _py3_b2a_hex(PAYLOAD))", "% (_py3_utf8(PAYLOAD), _py3_b2a_hex(PAYLOAD))", 1),
    ("case/case6_2_2.py", "% (PAYLOAD1, _py3_b2a_hex(PAYLOAD1), PAYLOAD2, _py3_b2a_hex(PAYLOAD2))",
     "% (_py3_utf8(PAYLOAD1), _py3_b2a_hex(PAYLOAD1), _py3_utf8(PAYLOAD2), _py3_b2a_hex(PAYLOAD2))", 1),
    # type(name, (object, Case), ...) is an MRO conflict for new-style classes
    ("case/case6_x_x.py", "(object, Case, )", "(Case, )", 1),
    ("case/case7_7_X.py", "(object, Case, )", "(Case, )", 1),
    ("case/case7_9_X.py", "(object, Case, )", "(Case, )", 1),
    ("case/case9_7_X.py", "(object, Case, )", "(Case, )", 1),
    ("case/case12_x_x.py", "(object, Case, )", "(Case, )", 2),
    # 9.9.1 (imported, not in the case list): zope class advice is gone
    ("case/case9_9_1.py", "from zope.interface import implements\n", "from zope.interface import implementer\n", 1),
    ("case/case9_9_1.py", "class FrameProducer:\n\n   implements(interfaces.IPushProducer)\n",
     "@implementer(interfaces.IPushProducer)\nclass FrameProducer:\n", 1),
    # 6.x.x: the UTF-8 validator classifying the generated cases needs bytes
    ("case/case6_x_x.py", "res = v.validate(vss[:i])", "res = v.validate(vss[:i].encode('latin-1'))", 1),
    ("case/case6_x_x.py", ".tostring()", ".tobytes()", 6),
    ("case/case10_1_1.py", "frames_expected[0] = len(self.payload) / self.p.autoFragmentSize",
     "frames_expected[0] = len(self.payload) // self.p.autoFragmentSize", 1),
    ("case/case12_x_x.py", "format(binascii.hexlify(received_hash), binascii.hexlify(self._expected_hash))",
     "format(binascii.hexlify(received_hash).decode(), binascii.hexlify(self._expected_hash).decode())", 1),
    ("case/case12_x_x.py", "import copy, os, pkg_resources, hashlib, binascii\n",
     "import copy, os, hashlib, binascii\n" + PKG_RES, 1),
    # fuzzing.py: helpers, send shim, bytes in reports
    ("fuzzing.py", "import os, json, binascii, time, textwrap, pkg_resources\n",
     "import os, json, binascii, time, textwrap\n" + PKG_RES, 1),
    ("fuzzing.py", "from autobahn.util import utcnow\n",
     "from autobahn.util import utcnow\n\nfrom autobahntestsuite.py3compat import to_bytes, to_text, jsonable, "
     "b2a_hex as _py3_b2a_hex\n", 1),
    ("fuzzing.py", BIN_LOG_OLD, BIN_LOG_NEW, 1),
    ("fuzzing.py", 'def asciiLogData(data, maxlen = 64, replace = False):\n   ellipses = " ..."',
     'def asciiLogData(data, maxlen = 64, replace = False):\n   data = to_bytes(data)\n   ellipses = b" ..."', 1),
    ("fuzzing.py", MIXIN_HEAD, MIXIN_HEAD + SEND_SHIM, 1),
    ("fuzzing.py", "self.http_request_data if hasattr", "to_text(self.http_request_data) if hasattr", 1),
    ("fuzzing.py", "self.http_response_data if hasattr", "to_text(self.http_response_data) if hasattr", 1),
    ("fuzzing.py", '"localCloseReason": self.localCloseReason,', '"localCloseReason": to_text(self.localCloseReason),', 1),
    ("fuzzing.py", '"remoteCloseReason": self.remoteCloseReason,', '"remoteCloseReason": to_text(self.remoteCloseReason),', 1),
    ("fuzzing.py", "p = ''.join(payload)", "p = b''.join(payload)", 1),
    ("fuzzing.py", "binascii.b2a_hex(frameHeader.mask) if frameHeader.mask else None",
     "_py3_b2a_hex(frameHeader.mask) if frameHeader.mask else None", 2),
    ("fuzzing.py", "f = open(os.path.join(outdir, report_filename), 'w')",
     "f = open(os.path.join(outdir, report_filename), 'w', encoding='utf-8')", 4),
    ("fuzzing.py", "f.write(json.dumps(case, sort_keys", "f.write(json.dumps(jsonable(case), sort_keys", 1),
    ("fuzzing.py", '(c[0], case[c[0]], c[1])).encode("utf-8"))', "(c[0], case[c[0]], c[1])))", 1),
    ("fuzzing.py", "(2+4+len(prefix))*\" \", ll.encode('utf8')))", "(2+4+len(prefix))*\" \", ll))", 1),
    ("fuzzing.py", "mmask = binascii.b2a_hex(t[6])", "mmask = str(t[6])", 1),  # already hex (see above)
    ("fuzzing.py", "webdir.putChild('cwd', curdir)", "webdir.putChild(b'cwd', curdir)", 1),
    # fuzzingserver: listen on spec["interface"] (default loopback), also the web port
    ("fuzzing.py", "   listenWS(factory, sslContext)\n",
     "   interface = spec.get('interface', '127.0.0.1')\n   listenWS(factory, sslContext, interface = interface)\n", 1),
    ("fuzzing.py", "reactor.listenSSL(webport, web, sslContext)",
     "reactor.listenSSL(webport, web, sslContext, interface = interface)", 1),
    ("fuzzing.py", "reactor.listenTCP(webport, web)", "reactor.listenTCP(webport, web, interface = interface)", 1),
    # fuzzingclient: write the reports of completed cases when interrupted
    ("fuzzing.py", CREATE_REPORTS, CREATE_REPORTS + "      self._reportsWritten = True\n", 1),
    ("fuzzing.py", START_CLIENT,
     "      reactor.addSystemEventTrigger('before', 'shutdown', self._reportsOnShutdown)\n\n"
     + START_CLIENT + REPORTS_ON_SHUTDOWN, 1),
    # wstest.py: WAMP `serializer` mode needs the dead unittest2 -> import lazily
    ("wstest.py", "import os, json, sys, pkg_resources\n", "import os, json, sys\n" + PKG_RES, 1),
    ("wstest.py", "\nfrom . import serializer\n", "\n", 1),
    ("wstest.py", "         return serializer.start(",
     "         from . import serializer\n         return serializer.start(", 1),
    ("broadcast.py", "\nimport pkg_resources\n", "\n" + PKG_RES, 1),
]

# binascii.b2a_hex on latin-1 view strs in case descriptions: file -> count
HEX_FILES = {"case6_2_1.py": 1, "case6_2_2.py": 2, "case6_2_3.py": 1, "case6_2_4.py": 1,
             "case6_3_1.py": 1, "case6_3_2.py": 1, "case6_4_1.py": 3, "case6_4_2.py": 3,
             "case6_4_3.py": 3, "case6_4_4.py": 3, "case7_5_1.py": 1, "case6_x_x.py": 3}
HEX_IMPORT = "from autobahntestsuite.py3compat import b2a_hex as _py3_b2a_hex, utf8_view as _py3_utf8"

# literals with raw non-ASCII characters (Python 2 read them as UTF-8 bytes)
NON_ASCII_LITERALS = {"case6_2_1.py": ["Hello-µ@ßöäüàá-UTF-8!!"],
                      "case6_2_2.py": ["Hello-µ@ßöä", "üàá-UTF-8!!"],
                      "case6_2_3.py": ["Hello-µ@ßöäüàá-UTF-8!!"]}

AUTOBAHN_EDITS = [
    # current txaio no longer picks a framework implicitly
    ("autobahn/twisted/websocket.py", "\nimport twisted.internet.protocol\n",
     "\nimport txaio\ntxaio.use_twisted()\n\nimport twisted.internet.protocol\n", 1),
    # range(float) in sendFrame(payload_len=...) (cases 7.1.6, 9.x)
    ("autobahn/websocket/protocol.py", "range(payload_len / len(payload))", "range(payload_len // len(payload))", 1),
    # echoCloseCodeReason: the close frame needs the reason as bytes
    ("autobahn/websocket/protocol.py",
     "self.sendCloseFrame(code=code, reasonUtf8=self.remoteCloseReason, isReply=True)",
     "self.sendCloseFrame(code=code, reasonUtf8=self.remoteCloseReason.encode('utf8') "
     "if self.remoteCloseReason is not None else None, isReply=True)", 1),
]


class PortError(Exception):
    pass


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def edit(path, old, new, count):
    text = read(path)
    found = text.count(old)
    if found != count:
        raise PortError("%s: expected %d occurrence(s) of %r, found %d" % (path, count, old, found))
    write(path, text.replace(old, new))


def insert_after_header(path, line):
    """Insert `line` before the first line that is neither a comment nor blank."""
    lines = read(path).split("\n")
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        i += 1
    lines.insert(i, line)
    write(path, "\n".join(lines))


def utf8_escape(s):
    return "".join(c if ord(c) < 128 else "".join("\\x%02x" % b for b in c.encode("utf-8")) for c in s)


def run_2to3(pkgdir):
    logging.basicConfig(format="%(name)s: %(message)s", level=logging.WARNING)
    from fissix import main as fissix_main
    rc = fissix_main.main("fissix.fixes", ["-w", "-n", "--no-diffs", pkgdir])
    if rc not in (0, None):
        raise PortError("2to3 (fissix) failed with exit status %r" % rc)


def port_testsuite(sdist):
    pkg = os.path.join(sdist, "autobahntestsuite")
    if os.path.exists(os.path.join(pkg, "py3compat.py")):
        raise PortError("%s is already ported; start from a fresh unpack" % sdist)
    for fn, literals in NON_ASCII_LITERALS.items():
        for lit in literals:
            edit(os.path.join(pkg, "case", fn), '"%s"' % lit, '"%s"' % utf8_escape(lit), 1)
    run_2to3(pkg)
    write(os.path.join(pkg, "py3compat.py"), PY3COMPAT)
    for fn, n in sorted(HEX_FILES.items()):
        path = os.path.join(pkg, "case", fn)
        edit(path, "binascii.b2a_hex(", "_py3_b2a_hex(", n)
        insert_after_header(path, HEX_IMPORT)
    for rel, old, new, n in TESTSUITE_EDITS:
        edit(os.path.join(pkg, rel), old, new, n)
    # dependencies are installed by setup.sh from requirements.txt
    edit(os.path.join(sdist, "setup.py"), 'install_requires=read_requirements("requirements.txt"),',
         "install_requires=[],", 1)


def port_autobahn(sdist):
    for rel, old, new, n in AUTOBAHN_EDITS:
        edit(os.path.join(sdist, rel), old, new, n)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        port_testsuite(argv[1])
        port_autobahn(argv[2])
    except PortError as e:
        print("py3port: %s" % e, file=sys.stderr)
        return 1
    print("py3port: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
