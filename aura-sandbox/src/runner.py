# AURA sandbox guest runner (shipped inside aura-sandbox with include_str!).
#
# Started by boot.py (`python3 -I -S -B -c <boot.py> MODE <this file>`) with an empty
# environment.
#   MODE "jail":  build the namespace jail (user, pid, mount, net, ipc, uts), pivot into
#                 a read-only root holding only the interpreter's runtime, then serve
#                 requests forever (a warm fork-server).
#   MODE "plain": no jail of its own (DockerSandbox: the container is the jail); serve
#                 the requests that come (a batch: one container for all of them), each
#                 in a child of its own forked for it, emptying the shared /scratch
#                 between them, and exit at end-of-file.
#
# Protocol (pipes): every frame is a 4-byte big-endian length and that many bytes of
# UTF-8 JSON.  host -> server: a config frame, then request frames.  server -> host:
# {"ready": ...} or {"fatal": ...} once, then per request a meta frame written by this
# (trusted) server and a reply frame holding the child's bytes verbatim (maybe empty).
# The server never parses what the child wrote: the host validates it.
#
# Per request a child forked ahead of time (the "spare"; in jail mode by the forker, a
# copy of the clean server, into a pid namespace of its own) unshares its mount and IPC
# namespaces, mounts a fresh tmpfs at /scratch, drops every capability, sets
# no_new_privs and installs the host-built seccomp filters (its own short ones: it
# inherits the long ones from the process that forked it, which installed them once),
# then waits for its request;
# it sets the request's rlimits, and only then does any guest code run.  Nothing the
# child does survives it.
#
# In jail mode, once a request is handed to its child, the forker compiles those of
# the request's sources the server has seen before into its code cache and forks the
# next spare while the current child runs: children forked later inherit the compiled
# code and compile only what is new (see CodeCache and "the forker").
import _random
import _string
import builtins
import ctypes
import dis
import gc
import io
import json
import linecache
import marshal
import os
import re
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback
import types
import warnings
from collections import OrderedDict

MODE = sys.argv[1] if len(sys.argv) > 1 else "plain"
# Ends a child's complete reply, followed by its CPU ms and peak RSS KiB (">II").
REPLY_END = b"\x00AURA-REPLY-END\x00"
TRAILER_LEN = len(REPLY_END) + 8
LIBC = ctypes.CDLL(None, use_errno=True)
MAX_FD = os.sysconf("SC_OPEN_MAX")
# libc's fork with the GIL held across it, as os.fork holds it (see Spare.fork).
FORK = ctypes.PyDLL(None, use_errno=True).fork
HOST_IN = 0
HOST_OUT = 1

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CO_VARARGS = 0x04  # code object flags (inspect's names; inspect itself is not loaded)
CO_VARKEYWORDS = 0x08


def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = read_exact(fd, n)
    if body is None:
        return None
    return json.loads(body)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_frame_bytes(fd, body):
    write_all(fd, struct.pack(">I", len(body)) + body)


def write_frame(fd, obj):
    write_frame_bytes(fd, json.dumps(obj).encode())


def errno_error(what):
    # The OSError for a libc call through ctypes that just failed.
    err = ctypes.get_errno()
    return OSError(err, "%s: %s" % (what, os.strerror(err)))


def check(ret, what):
    if ret != 0:
        raise errno_error(what)


def mount(src, dst, fstype, flags, data=None):
    check(
        LIBC.mount(
            None if src is None else src.encode(),
            dst.encode(),
            None if fstype is None else fstype.encode(),
            ctypes.c_ulong(flags),
            None if data is None else data.encode(),
        ),
        "mount %s" % dst,
    )


def locked_flags(path):
    # Flags a user namespace may not clear on a bind mount: keep them when remounting.
    f = os.statvfs(path).f_flag
    out = 0
    if f & 2:
        out |= MS_NOSUID
    if f & 4:
        out |= MS_NODEV
    if f & 8:
        out |= MS_NOEXEC
    if f & 1024:
        out |= MS_NOATIME
    if f & 2048:
        out |= MS_NODIRATIME
    if f & 4096:
        out |= MS_RELATIME
    return out


def bind_ro(src, dst):
    flags = locked_flags(src)
    mount(src, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | flags)


# ---------------------------------------------------------------- the jail (server side)


def enter_namespaces(uid, gid):
    # The launcher: new namespaces, identity maps, then fork the server as pid 1.
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    check(LIBC.unshare(ctypes.c_int(flags)), "unshare (user namespaces)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write("0 %d 1" % uid)
    with open("/proc/self/gid_map", "w") as f:
        f.write("0 %d 1" % gid)
    launcher = os.getpid()
    pid = os.fork()
    if pid != 0:
        # Stay only to relay the server's death to the host (the host kills us to kill
        # the whole namespace: the server dies with us through PDEATHSIG).
        for fd in (HOST_IN, HOST_OUT):
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not os.path.exists("/proc/%d" % launcher):
        os._exit(1)


def runtime_paths():
    # What the interpreter needs: /usr plus its own prefix when it lives elsewhere.
    paths = ["/usr"]
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable))):
        p = os.path.realpath(p)
        if p and p != "/" and not any(p == q or p.startswith(q + "/") for q in paths):
            paths.append(p)
    return paths


def build_root(cfg):
    stage = cfg.get("stage", "/tmp")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    runtime = runtime_paths()
    for p in runtime:
        if p == stage or p.startswith(stage + "/"):
            raise OSError(22, "the interpreter lives under %s, the jail's staging dir" % stage)
    mount("aura-root", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for p in runtime:
        os.makedirs(stage + p, exist_ok=True)
        bind_ro(p, stage + p)
    # Top-level entries the loader may use: merged-/usr symlinks, or read-only binds.
    for top in ("/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin"):
        if os.path.islink(top):
            os.symlink(os.readlink(top), stage + top)
        elif os.path.isdir(top):
            os.makedirs(stage + top, exist_ok=True)
            bind_ro(top, stage + top)
    os.makedirs(stage + "/dev", exist_ok=True)
    for dev in ("null", "zero", "urandom", "random"):
        if os.path.exists("/dev/" + dev):
            open(stage + "/dev/" + dev, "w").close()
            mount("/dev/" + dev, stage + "/dev/" + dev, None, MS_BIND)
    os.makedirs(stage + "/scratch", mode=0o755)
    os.symlink("/scratch", stage + "/tmp")
    os.chdir(stage)
    check(LIBC.syscall(ctypes.c_long(cfg["sys_pivot_root"]), b".", b"."), "pivot_root")
    check(LIBC.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    LIBC.sethostname(b"aura", 4)


# ---------------------------------------------------------------- the runtime layer
#
# When the host sends the API allowlist (config "api": aura-guard's module_api.json),
# guest code gets (1) a builtins mapping with only the allowed builtins, an import
# that hands out read-only proxy modules exposing only allowlisted names (a from-import
# only of the proxy's names), and getattr & co. that refuse private, frame and denied
# names; and (2) a check of its compiled code before it runs: no private or frame
# attribute (a from-import's and a class pattern's names included), no dunder string,
# no str.format on anything but a constant, no format field reaching a private name,
# no positional class pattern but on a builtin type. The code dataclasses generates
# from field names is checked too, and runs with the guest's builtins.
# The guard enforces the same list statically; each layer holds without the other.
# Everything is built once in the server, before any child is forked.

# Guest-facing callables are compiled in a namespace of their own, so that nothing
# of this runner (os, ctypes, its globals) hangs off them.
LAYER_SOURCE = """
class ApiModule(ModuleType):
    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError("module %s is read-only" % self.__name__)

    def __delattr__(self, name):
        raise AttributeError("module %s is read-only" % self.__name__)


def guest_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0:
        raise ImportError("relative imports are not allowed; import allowed modules by name")
    module = PROXIES.get(name)
    if module is None:
        raise ImportError("import of %r is not allowed; allowed modules: %s" % (name, ALLOWED))
    if fromlist:
        # Every name must be the proxy's: a from-import that misses falls back to
        # sys.modules["<module>.<name>"], the real submodule (json.decoder).
        names = module.__dict__
        for n in fromlist:
            if n == "*":
                raise ImportError("from %s import * is not allowed; import the names you use"
                                  % name)
            if not isinstance(n, str) or n.startswith("_") or n not in names:
                raise ImportError("cannot import name %r from %r: it is not in the module's "
                                  "allowlist" % (n, name))
        return module
    return PROXIES[name.partition(".")[0]]


def generated_exec(source, globals=None, locals=None):
    # dataclasses writes field names into the source of the methods it generates and
    # runs it with the real builtins: a field named "x if 0 else __import__('os')..."
    # (a TypedDict's key, an __annotations__ entry) would be code. Generated code gets
    # the code check (with the few dunders dataclasses uses) and the guest's builtins.
    code = real_compile(source, "<aura:generated>", "exec")
    why = CHECK_GENERATED(code)
    if why:
        raise RuntimeDenied("code generated by dataclasses: %s is not allowed (the API "
                            "allowlist)" % why)
    real_exec(code, {"__builtins__": GUEST_BUILTINS}, locals)


def check_name(name):
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if name.startswith("_") or name in DENIED_ATTRS or name.startswith(FRAME_PREFIXES):
        raise AttributeError("the attribute %r is not allowed" % name)


def getattr(obj, name, *default):
    check_name(name)
    return real_getattr(obj, name, *default)


def hasattr(obj, name):
    check_name(name)
    return real_hasattr(obj, name)


def setattr(obj, name, value):
    check_name(name)
    real_setattr(obj, name, value)


def delattr(obj, name):
    check_name(name)
    real_delattr(obj, name)


def type(obj, *more):
    # With three arguments type builds a class from a namespace whose keys may be built
    # at run time (a dunder method no class statement could define); the type of a
    # class is its metaclass, which does the same (type(int)("X", (), ns)).
    if more:
        raise RuntimeDenied("type() takes one argument here: building a class from a "
                            "namespace is not allowed (the API allowlist); write a class "
                            "statement")
    t = real_type(obj)
    if real_issubclass(t, real_type):
        raise RuntimeDenied("type() of a class is not available: a class's type is its "
                            "metaclass, which builds classes from namespaces (the API "
                            "allowlist)")
    return t


def build_class(func, name, *bases, **kwargs):
    # class M(type): the guest's type is a function, so without this check the class
    # statement fails with an obscure TypeError; say what is refused instead.
    for base in bases:
        if base is type:
            raise RuntimeDenied("a class may not derive from type: a metaclass builds "
                                "classes from namespaces (the API allowlist)")
    return real_build_class(func, name, *bases, **kwargs)


def enum_create(cls, class_name, names, **options):
    # Enum's functional API (Enum("X", names)) names the class's attributes with strings
    # chosen at run time, so a member named "_" * 2 + "getattr" + "_" * 2 would plant a
    # dunder method. The names are read once, here, into plain str and tuples (a guest
    # object cannot answer differently when enum reads them again), and none may start
    # with "_".
    if real_type(names) is str:
        items = names.replace(",", " ").split()
    elif isinstance(names, (list, tuple)):
        items = list(names)
    else:
        items = [(key, names[key]) for key in list(names)]
    members = []
    for item in items:
        if real_type(item) in (tuple, list) and len(item) == 2:
            key, item = item[0], (item[0], item[1])
        else:
            key = item
        if real_type(key) is not str:
            raise RuntimeDenied("enum member names must be strings (the API allowlist)")
        if key.startswith("_"):
            raise RuntimeDenied("the enum member name %r starts with '_': the functional API "
                                "may not name private or dunder attributes (the API "
                                "allowlist); define the enum with a class statement" % key)
        members.append(item)
    return ENUM_CREATE(cls, class_name, members, **options)
"""


class ApiLayer:
    def __init__(self, api):
        frame = set(api.get("frame_attributes", []))
        denied = set(api.get("denied_builtins", []))
        # Attributes that hand back objects the guest was never given (AttributeError's
        # obj): which object holds one is not known before the code runs.
        self.handback_attrs = frozenset(api.get("handback_attributes", {}))
        self.frame_prefixes = tuple(api.get("frame_attribute_prefixes", []))
        # Attribute names refused on any object, by getattr & co. and in code.
        self.denied_attrs = frozenset(frame | denied | self.handback_attrs
                                      | {"format", "format_map"})
        self.code_denied_attrs = frozenset(frame)
        self.denied_globals = frozenset(n for n in denied)
        ns = {"__builtins__": {"__build_class__": builtins.__build_class__,
                               "AttributeError": AttributeError, "ImportError": ImportError,
                               "TypeError": TypeError, "isinstance": isinstance, "str": str,
                               "len": len, "list": list, "tuple": tuple,
                               "__name__": "aura_layer"},
              "__name__": "aura_layer", "ModuleType": types.ModuleType, "PROXIES": {},
              "ALLOWED": ", ".join(sorted(api.get("modules", {}))),
              "DENIED_ATTRS": self.denied_attrs, "FRAME_PREFIXES": self.frame_prefixes,
              "real_getattr": builtins.getattr, "real_hasattr": builtins.hasattr,
              "real_setattr": builtins.setattr, "real_delattr": builtins.delattr,
              "real_compile": builtins.compile, "real_exec": builtins.exec,
              "real_type": builtins.type, "real_issubclass": builtins.issubclass,
              "real_build_class": builtins.__build_class__,
              "RuntimeDenied": RuntimeDenied,
              "CHECK_GENERATED": self.check_generated}
        exec(compile(LAYER_SOURCE, "<aura:layer>", "exec"), ns)
        proxies = ns["PROXIES"]
        # Parents before submodules, so that a submodule's proxy hangs off its parent's.
        for name in sorted(api.get("modules", {}), key=lambda m: m.count(".")):
            real = __import__(name, fromlist=["_"])
            proxy = ns["ApiModule"](name)
            d = proxy.__dict__
            for attr in api["modules"][name]:
                if hasattr(real, attr):
                    d[attr] = getattr(real, attr)
            parent, _, child = name.rpartition(".")
            if parent in proxies:
                proxies[parent].__dict__[child] = proxy
            proxies[name] = proxy
        self.builtins = {n: getattr(builtins, n) for n in api.get("builtins", [])
                         if hasattr(builtins, n)}
        for n in ("getattr", "hasattr", "setattr", "delattr", "type"):
            if n in self.builtins:
                self.builtins[n] = ns[n]
        # What the interpreter itself needs: class statements and import statements.
        self.builtins["__build_class__"] = ns["build_class"]
        self.builtins["__import__"] = ns["guest_import"]
        self.builtins["__name__"] = "builtins"
        ns["GUEST_BUILTINS"] = self.builtins
        # dataclasses looks exec up in its module globals first (see generated_exec).
        if "dataclasses" in proxies:
            sys.modules["dataclasses"].exec = ns["generated_exec"]
        # Every functional-API enum is made by EnumType._create_ (CPython 3.11), whatever
        # enum class it is called on (see enum_create).
        if "enum" in proxies:
            enum_type = sys.modules["enum"].EnumType
            if not hasattr(enum_type, "_create_"):
                raise RuntimeError("enum.EnumType._create_ is missing: the runtime layer "
                                   "knows CPython 3.11's enum; update enum_create")
            ns["ENUM_CREATE"] = enum_type._create_
            enum_type._create_ = ns["enum_create"]

    def attr_problem(self, name, allowed=frozenset()):
        if name in allowed:
            return None
        if name.startswith("_") and name != "__init__":
            return "the private attribute %r" % name
        if name in self.code_denied_attrs or name.startswith(self.frame_prefixes):
            return "the frame attribute %r" % name
        if name in self.handback_attrs:
            return "the attribute %r (an AttributeError's obj hands back objects)" % name
        return None

    def check_format(self, text):
        # Every attribute a format string's fields reach, nested specs included.
        try:
            parts = list(_string.formatter_parser(text))
        except ValueError:
            return None
        for _, field, spec, _ in parts:
            if field:
                try:
                    _, rest = _string.formatter_field_name_split(field)
                    for is_attr, key in rest:
                        if is_attr and (key.startswith("_") or self.attr_problem(key)):
                            return "a format field reaching %r" % key
                except ValueError:
                    return None
            if spec and "{" in spec:
                why = self.check_format(spec)
                if why:
                    return why
        return None

    def check_generated(self, code):
        # dataclasses' generated methods, checked at each class definition: by the names
        # they use (attributes and globals alike), which is quick (a few microseconds);
        # the full check runs only when a format method is named (a field named format
        # is refused there, as reading one is in guest code).
        pending = [code]
        full = False
        while pending:
            co = pending.pop()
            for name in co.co_names:
                if name in GENERATED_ATTRS:
                    continue
                why = self.attr_problem(name)
                if why:
                    return why
                if name in ("format", "format_map"):
                    full = True
            for c in co.co_consts:
                if isinstance(c, types.CodeType):
                    pending.append(c)
                elif isinstance(c, str) and "{" in c:
                    why = self.check_format(c)
                    if why:
                        return why
        return self.check_code(code, GENERATED_ATTRS) if full else None

    def check_code(self, code, allowed=frozenset()):
        # allowed: attribute names accepted on top of the rules (generated code only).
        # Parameters are the guest's own names only in guest code: dataclasses names
        # its generated methods' parameters __dataclass_self__ and the like.
        guest = not allowed
        pending = [code]
        stored = set()  # names bound in a global or class namespace, anywhere
        self_matched = set()  # builtins matched with a positional class pattern
        while pending:
            co = pending.pop()
            if guest:
                n = co.co_argcount + co.co_kwonlyargcount \
                    + bool(co.co_flags & CO_VARARGS) \
                    + bool(co.co_flags & CO_VARKEYWORDS)
                for param in co.co_varnames[:n]:
                    if param.startswith("_") and param != "_":
                        return ("the parameter %r (a leading '_' is reserved for private "
                                "and guard names)" % param)
            prev2 = prev = None
            for ins in dis.get_instructions(co):
                op = ins.opname
                if op in ("LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR",
                          "IMPORT_FROM"):
                    why = self.attr_problem(ins.argval, allowed)
                    if why is None and ins.argval in ("format", "format_map") \
                            and op not in ("STORE_ATTR", "IMPORT_FROM"):
                        if not (prev is not None and prev.opname == "LOAD_CONST"
                                and isinstance(prev.argval, str)):
                            why = "str.%s on a string that is not a constant" % ins.argval
                    if why:
                        return why
                elif op in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "STORE_NAME",
                            "DELETE_NAME", "DELETE_GLOBAL"):
                    if ins.argval in self.denied_globals:
                        return "the name %r" % ins.argval
                    if not op.startswith("LOAD"):
                        stored.add(ins.argval)
                elif op == "MATCH_CLASS":
                    # A class pattern reads attributes: its keywords by name (a constant
                    # tuple just before), its positional sub-patterns by the names in the
                    # class's __match_args__, which a guest class chooses at run time
                    # (and a metaclass's __instancecheck__ lets any object match).
                    keys = prev.argval if prev is not None and prev.opname == "LOAD_CONST" \
                        else None
                    if not isinstance(keys, tuple):
                        return "a class pattern whose keywords are not constant"
                    for key in keys:
                        why = self.attr_problem(key) if isinstance(key, str) else "?"
                        if why:
                            return "%s in a class pattern" % why
                    if ins.arg:
                        if prev2 is None or prev2.opname not in ("LOAD_GLOBAL", "LOAD_NAME") \
                                or prev2.argval not in SELF_MATCHING:
                            return ("a positional sub-pattern in a class pattern (the "
                                    "class's __match_args__ names what it reads; write "
                                    "keywords, case P(x=a))")
                        self_matched.add(prev2.argval)
                prev2, prev = prev, ins
            for c in co.co_consts:
                if isinstance(c, types.CodeType):
                    pending.append(c)
                elif isinstance(c, str):
                    if len(c) > 4 and c.startswith("__") and c.endswith("__") \
                            and c.replace("_", "a").isalnum() and c != "__init__":
                        return "the dunder string %r" % c
                    if "{" in c:
                        why = self.check_format(c)
                        if why:
                            return why
        rebound = self_matched & stored
        if rebound:
            return "a class pattern on %r, a name the code rebinds" % min(rebound)
        return None


# Builtin types whose class pattern takes one positional sub-pattern, the subject itself
# (they have no __match_args__, and a guest cannot give them one).
SELF_MATCHING = frozenset(("bool", "bytearray", "bytes", "dict", "float", "frozenset", "int",
                           "list", "set", "str", "tuple"))
# Names dataclasses' generated methods use (CPython 3.11): __repr__ reads
# self.__class__.__qualname__, frozen classes call __setattr__/__delattr__, __init__
# calls __post_init__, and each method is made by a __create_fn__.
GENERATED_ATTRS = frozenset(("__class__", "__qualname__", "__setattr__", "__delattr__",
                             "__post_init__", "__create_fn__"))

API_LAYER = None  # an ApiLayer when the host sent the allowlist


class RuntimeDenied(Exception):
    """Raised when the runtime layer refuses guest code before it runs."""


# ---------------------------------------------------------------- the code cache
#
# The forker keeps the code objects of the sources it has been sent, so that a warm
# call compiles (and checks) nothing it has seen before. The server sends it only the
# sources it has seen at least once before (Forker.cacheable): a search's candidates,
# each run once, would otherwise fill the cache, and the forker's memory that every
# fork copies, with code no later call uses. A spare is forked before its
# request arrives, so an entry only helps children forked after it was added: the
# forker fills the cache from a request once the request is in its child's hands,
# before it forks the next spare, off the call's critical path.
#
# Safety. The forker only ever compiles what it is sent, never executes it: no guest
# code runs in the forker (nor in the server), and the cache is complete before the
# child that inherits it runs any. A child gets a copy-on-write copy: whatever guest code does to it (it can
# reach the runner's globals when no runtime layer is on), and the interpreter's own
# specialising of the bytecode it runs, is gone with the child. The key is the exact
# (filename, source) pair: a dict hashes the text and compares it whole, so a changed
# method is a miss, never served stale. Compiling is bounded work: only sources of at
# most `source_bytes` are cached; CPython's compiler bounds constant folding (ints to
# 128 bits, str/bytes to 4096 items, tuples and sets to 256), so a bounded source
# compiles in bounded time and memory; and one round compiles at most `bytes` of source
# (the forker runs outside the child's rlimits and the child's own seccomp filters,
# though inside the namespaces, the read-only root and the filters it installs for every
# child). What the compiler folded counts too: an entry weighs its
# source plus its marshalled code, and the cache holds at most `entries` entries and
# `bytes` of weight (least recently used first out).
#
# Same behaviour, cached or not: a source that does not compile, or that compiles with
# a warning (which the child writes to the guest's stderr), is not cached, so the child
# compiles it and raises (or warns) exactly as before; the runtime layer's verdict is
# cached with the code and raised as the same RuntimeDenied; the child fills linecache
# either way. The forker compiles CACHE_DEPTH levels deeper than any child does (a
# child compiles fewer than ten frames down): the compiler's recursion limit depends
# on the stack depth, so whatever the forker compiled, the child would have too.
CACHE_DEPTH = 24


def method_filename(selector):
    return "<aura:method %s>" % selector


TESTS_FILENAME = "<aura:tests>"


def request_sources(req):
    """The (filename, source) pairs a child compiles for this request."""
    out = []
    for m in list(req.get("helpers") or []) + [req.get("method")]:
        if isinstance(m, dict) and isinstance(m.get("selector"), str) \
                and isinstance(m.get("source"), str):
            out.append((method_filename(m["selector"]), m["source"]))
    if isinstance(req.get("tests"), str):
        out.append((TESTS_FILENAME, req["tests"]))
    return out


def descend(n, fn, *args):
    # Calls fn n levels deeper, in Python frames and in C calls alike (map calls the
    # lambda from C): which of the two the compiler's limit counts depends on the
    # CPython version.
    if n <= 0:
        return fn(*args)
    return next(map(lambda _: descend(n - 1, fn, *args), (0,)))


def compile_quietly(source, filename):
    # None when the source does not compile cleanly (an error or a warning).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = compile(source, filename, "exec")
        except Exception:
            return None
    return None if caught else code


class CodeCache:
    """(filename, source) -> (code, the runtime layer's verdict), built in the forker."""

    def __init__(self, cfg):
        cfg = cfg or {}
        self.max_entries = max(0, int(cfg.get("entries", 0)))
        self.max_bytes = max(0, int(cfg.get("bytes", 0)))
        self.max_source = max(0, int(cfg.get("source_bytes", 0)))
        self.entries = OrderedDict()  # key -> (code, verdict, weight)
        self.weight = 0

    def get(self, filename, source):
        # The child's look-up (its own copy; the order is the forker's business).
        hit = self.entries.get((filename, source))
        return None if hit is None else hit[:2]

    def remember(self, sources):
        """Compiles the new of a request's (filename, source) pairs (in the forker).
        True when it added any."""
        if self.max_entries == 0 or self.max_bytes == 0:
            return False
        added = False
        budget = self.max_bytes
        for key in sources:
            key = tuple(key)
            if len(key) != 2 or not all(isinstance(k, str) for k in key):
                continue
            if key in self.entries:
                self.entries.move_to_end(key)
                continue
            filename, source = key
            if len(source) > self.max_source:
                continue
            size = len(source.encode("utf-8", "surrogatepass"))
            if size > self.max_source or size > budget:
                continue
            budget -= size
            code = descend(CACHE_DEPTH, compile_quietly, source, filename)
            if code is None:
                continue
            try:
                verdict = None if API_LAYER is None else API_LAYER.check_code(code)
                weight = size + len(marshal.dumps(code))
            except Exception:
                continue
            if weight > self.max_bytes:
                continue
            self.entries[key] = (code, verdict, weight)
            self.weight += weight
            added = True
            while len(self.entries) > self.max_entries or self.weight > self.max_bytes:
                _, (_, _, w) = self.entries.popitem(last=False)
                self.weight -= w
        return added


CODE_CACHE = CodeCache(None)  # configured by main() from the host's config


# ---------------------------------------------------------------- the child (per call)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


FILTERS = []  # (buffer, SockFprog) pairs each child installs, built once in the server
# What capset(2) clears, built once in the server too: a child that made its own would
# create a ctypes array type, and every page that touches costs it a copy-on-write fault
# (most of a child's cost is such faults: it should touch as little as it can).
CAP_HEADER = CapHeader(0x20080522, 0)
CAP_DATA = (CapData * 2)()
CAPSET = LIBC.capset  # looked up once: ctypes resolves a name on its first use


def prepare_filters(cfg, key):
    out = []
    for hexblob in cfg.get(key, []):
        blob = bytes.fromhex(hexblob)
        buf = ctypes.create_string_buffer(blob, len(blob))
        out.append((buf, SockFprog(len(blob) // 8, ctypes.cast(buf, ctypes.c_void_p))))
    return out


def install_filters(filters):
    check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for _, prog in filters:
        check(LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def install_inherited_filters(cfg):
    # In the process that forks the children (the forker, or the plain-mode server),
    # once, before its first fork: installing a filter costs the kernel a pass over
    # every syscall number and a JIT compilation, and children inherit filters for
    # free. None of these forbid what that process or a child's set-up does.
    install_filters(prepare_filters(cfg, "seccomp_inherited"))


def prepare_child(cfg, jailed):
    # Everything that does not depend on the request: done ahead of time by the spare.
    # Its own random numbers first (os.fork's at-fork hook would have reseeded them):
    # the C seed from the OS's entropy that random.seed() calls. Its Python wrapper
    # only checks the argument's type and clears gauss_next (None already: trusted code
    # never draws), and its frame cost about 16 copy-on-write faults a call.
    rng = sys.modules.get("random")
    if rng is not None:
        _random.Random.seed(rng._inst, None)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if jailed:
        # Its own mount namespace for a fresh scratch, and its own IPC namespace: SysV
        # objects and POSIX message queues outlive their creator, and the server's
        # namespace is shared by every call it serves.
        check(LIBC.unshare(ctypes.c_int(CLONE_NEWNS | CLONE_NEWIPC)), "unshare scratch, ipc")
        mount("aura-scratch", "/scratch", "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0700,size=%d" % cfg["scratch_bytes"])
    os.chdir("/scratch")
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if jailed:
        # The bounding set went in the server (drop_bounding_set): what is left is this
        # process's own capabilities, all of them cleared here.
        check(CAPSET(ctypes.byref(CAP_HEADER), CAP_DATA), "capset")
    install_filters(FILTERS)


def drop_bounding_set():
    # Once, in the server: children inherit the empty bounding set (it only bounds what
    # an execve could grant, and the server never execs), so a child's lock-down need
    # not drop capabilities one system call at a time.
    cap = 0
    while LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    if cap == 0:
        raise errno_error("dropping the capability bounding set")


EXIT_XCPU = 128 + signal.SIGXCPU  # a child that its CPU limit ended, as a shell says it


def cpu_limit_reached(signum, frame):
    os._exit(EXIT_XCPU)


def apply_limits(cfg, limits):
    # Hard and soft limits alike: without capabilities they can only go down.
    mem = int(limits["memory_bytes"]) + int(cfg.get("baseline_vm_bytes", 0))
    cpu = max(1, -(-int(limits["cpu"]) // 1000))
    if os.getpid() == 1:
        # Pid 1 of a namespace (a jailed child) ignores a signal it has no handler for:
        # the soft limit's SIGXCPU ends it through this one (or the hard limit, a second
        # later, through SIGKILL, when it is stuck in one long C call).
        signal.signal(signal.SIGXCPU, cpu_limit_reached)
    for res, val in ((resource.RLIMIT_AS, (mem, mem)),
                     (resource.RLIMIT_CPU, (cpu, cpu + 1)),
                     (resource.RLIMIT_NOFILE, (64, 64)),
                     (resource.RLIMIT_FSIZE, (cfg["scratch_bytes"], cfg["scratch_bytes"])),
                     (resource.RLIMIT_CORE, (0, 0)),
                     (resource.RLIMIT_NPROC, (cfg.get("nproc", 64),) * 2)):
        resource.setrlimit(res, val)


class OutputLimitExceeded(BaseException):
    """Raised into the guest when it writes past the output limit."""


class RunState:
    flooded = False
    compiled = 0  # sources this child compiled itself (code cache misses)
    wfd = -1
    captures = ()


def finish_flooded():
    out, err = RunState.captures
    body = dumps({"ended": "output_limit", "stdout": out.text(), "stderr": err.text(),
                  "compiled": RunState.compiled})
    try:
        write_all(RunState.wfd, body.encode("utf-8", "replace"))
    finally:
        os._exit(0)


class Capture(io.TextIOBase):
    def __init__(self, cap):
        self.parts = []
        self.size = 0
        self.cap = cap

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        data = s.encode("utf-8", "replace")
        room = self.cap - self.size
        if len(data) > room:
            if room > 0:
                self.parts.append(data[:room])
                self.size = self.cap
            RunState.flooded = True
            # End the child here and now: a guest that swallows exceptions cannot go on.
            finish_flooded()
        self.parts.append(data)
        self.size += len(data)
        return len(s)

    def text(self):
        return b"".join(self.parts).decode("utf-8", "replace")


def guest_traceback(exc):
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if f.filename.startswith("<aura:")])
    return "".join(te.format())


def error_of(exc):
    return {"type_name": type(exc).__name__, "message": str(exc), "traceback": guest_traceback(exc)}


def compile_source(source, filename):
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    hit = CODE_CACHE.get(filename, source)
    if hit is None:
        RunState.compiled += 1
        code = compile(source, filename, "exec")
        why = None if API_LAYER is None else API_LAYER.check_code(code)
    else:
        code, why = hit
    if why:
        raise RuntimeDenied("%s: %s is not allowed (the API allowlist)" % (filename, why))
    return code


def guest_builtins():
    return builtins if API_LAYER is None else API_LAYER.builtins


def load_method(m):
    ns = {"__name__": "aura_method", "__builtins__": guest_builtins()}
    exec(compile_source(m["source"], method_filename(m["selector"])), ns)
    fn = ns.get(m["selector"])
    if not callable(fn):
        raise NameError("the source does not define %s(self, ...)" % m["selector"])
    return fn


class SealedClass(type):
    """AuraObject's metaclass: one test cannot patch the class the next test's object
    shares (type(self).method = ...)."""

    def __setattr__(cls, name, value):
        raise AttributeError("the object's class is read-only")

    def __delattr__(cls, name):
        raise AttributeError("the object's class is read-only")


class AuraObject(metaclass=SealedClass):
    """`self` of a guest method: its methods, and its slots as attributes.

    One class, made in the server, for every object: a class made per object costs a
    child dozens of copy-on-write faults. The private slots are out of the guest's reach
    (the runtime layer refuses private names)."""

    __slots__ = ("_aura_methods", "_aura_state")

    def __getattr__(self, name):
        methods = self._aura_methods
        if name in methods:
            return types.MethodType(methods[name], self)
        slots = self._aura_state["slots"]
        if name in slots:
            return slots[name]
        raise AttributeError("object has no slot or method %r" % name)

    def __setattr__(self, name, value):
        if name in self._aura_methods:
            raise AttributeError("cannot assign to method %r" % name)
        state = self._aura_state
        state["slots"][name] = value
        state["assigned"].add(name)

    def __delattr__(self, name):
        raise AttributeError("slots cannot be deleted")

    def __repr__(self):
        return "<aura object>"


def make_object(slots, methods):
    state = {"slots": slots, "assigned": set()}
    obj = object.__new__(AuraObject)
    object.__setattr__(obj, "_aura_methods", methods)
    object.__setattr__(obj, "_aura_state", state)
    return obj, state


# One encoder, made in the server: json.dumps with options makes a new one per call.
ENCODER = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def dumps(value):
    return ENCODER.encode(value)


# Integers beyond what the host's JSON numbers hold exactly (serde_json keeps i64 and
# u64; anything larger would come back as a float with digits lost) cross the boundary
# both ways as a one-entry object: {"$int": "354224848179261915075"}. That shape is
# reserved: a guest's own dict of it would come back as an int, so it is refused
# instead. aura-guard writes the same object for a literal in an example, and
# aura-cognition's python_literal writes it back as digits.
BIG_INT = "$int"
INT_MIN, INT_MAX = -(1 << 63), (1 << 64) - 1
BIG_INT_DIGITS = re.compile(r"-?[0-9]+")
# Any integer beyond that range takes at least 19 digits.
MAYBE_TAGGED = re.compile(r'[0-9]{19}|"\$int"')


def is_tag(d):
    digits = d.get(BIG_INT) if len(d) == 1 else None
    return isinstance(digits, str) and BIG_INT_DIGITS.fullmatch(digits) is not None


def tagged(data):
    # JSON data as it crosses to the host: integers beyond INT_MIN..INT_MAX tagged.
    if isinstance(data, int) and not isinstance(data, bool):
        return data if INT_MIN <= data <= INT_MAX else {BIG_INT: str(data)}
    if isinstance(data, list):
        return [tagged(v) for v in data]
    if isinstance(data, dict):
        if is_tag(data):
            raise TypeError("a dict of the one key %r holding digits is reserved for "
                            "integers beyond 64 bits" % BIG_INT)
        return {k: tagged(v) for k, v in data.items()}
    return data


def to_host(value):
    # A guest's value as JSON data for the host: raises what json raises, and TypeError
    # for the reserved dict.
    return text_to_host(dumps(value))


def text_to_host(text):
    # The same, for a value dumps already encoded as `text`.
    data = json.loads(text)
    return tagged(data) if MAYBE_TAGGED.search(text) else data


def untagged(obj):
    # json's object_hook: the host's tagged integers back into ints (one longer than
    # Python converts, sys.get_int_max_str_digits, stays the dict it came as).
    if is_tag(obj):
        try:
            return int(obj[BIG_INT])
        except ValueError:
            pass
    return obj


def from_host(body):
    return json.loads(body, object_hook=untagged) if b'"$int"' in body else json.loads(body)


def run_request(req, out_cap):
    reply = {"ended": "ok", "error": None, "slot_changes": {}, "tests": []}
    try:
        methods = {}
        for m in req.get("helpers", []):
            methods[m["selector"]] = load_method(m)
        methods[req["method"]["selector"]] = load_method(req["method"])
        slots_json = dumps(req.get("slots", {}))
        if req.get("tests") is None:
            before = {k: dumps(v) for k, v in req.get("slots", {}).items()}
            obj, state = make_object(json.loads(slots_json), methods)
            value = getattr(obj, req["method"]["selector"])(*req.get("args", []))
            try:
                reply["value"] = to_host(value)
            except (TypeError, ValueError) as e:
                raise TypeError("the return value is not JSON-serialisable: %s" % e) from None
            if len(dumps(reply["value"])) > out_cap:
                RunState.flooded = True
                raise OutputLimitExceeded("the return value is larger than the output limit")
            changes = {}
            for k, v in state["slots"].items():
                try:
                    text = dumps(v)
                except (TypeError, ValueError) as e:
                    raise TypeError("slot %r is not JSON-serialisable: %s" % (k, e)) from None
                if k in state["assigned"] or before.get(k) != text:
                    try:
                        changes[k] = text_to_host(text)
                    except TypeError as e:
                        raise TypeError("slot %r is not JSON-serialisable: %s" % (k, e)) from None
            if len(dumps(changes)) > out_cap:
                RunState.flooded = True
                raise OutputLimitExceeded("the slot changes are larger than the output limit")
            reply["slot_changes"] = changes
        else:
            obj, _ = make_object(json.loads(slots_json), methods)
            ns = {"__name__": "aura_tests", "__builtins__": guest_builtins(), "obj": obj}
            exec(compile_source(req["tests"], TESTS_FILENAME), ns)
            names = [n for n, f in list(ns.items()) if n.startswith("test_") and callable(f)]
            for name in names[:1000]:
                fresh, _ = make_object(json.loads(slots_json), methods)
                ns["obj"] = fresh
                fn = ns[name]
                try:
                    argc = getattr(getattr(fn, "__code__", None), "co_argcount", 0)
                    fn(fresh) if argc >= 1 else fn()
                    reply["tests"].append({"name": name, "passed": True, "message": None})
                except (Exception, AssertionError) as e:
                    msg = "%s: %s\n%s" % (type(e).__name__, e, guest_traceback(e))
                    reply["tests"].append({"name": name, "passed": False, "message": msg[:4096]})
    except OutputLimitExceeded:
        reply["ended"] = "output_limit"
    except MemoryError as e:
        reply["ended"] = "memory"
        reply["error"] = {"type_name": "MemoryError", "message": str(e), "traceback": ""}
    except BaseException as e:  # the guest's exception, whatever it is
        reply["ended"] = "exception"
        reply["error"] = error_of(e)
    if RunState.flooded:
        reply["ended"] = "output_limit"
        reply.pop("value", None)
        reply["slot_changes"] = {}
    return reply


# A trusted request the server runs before it forks anyone (warm_up). Both paths a
# child takes: a call that reads and assigns a slot, and tests, one failing (the
# traceback path).
WARM_UP_METHOD = {
    "selector": "aura_warm_up",
    "source": "def aura_warm_up(self, n):\n"
              "    self.count = self.count + n\n"
              "    return [n, str(n), n / 2, None, True, {'n': n}]\n",
}
WARM_UP_REQUESTS = (
    {"method": WARM_UP_METHOD, "args": [3], "slots": {"count": 1}, "tests": None},
    {"method": WARM_UP_METHOD, "slots": {"count": 1},
     "tests": "def test_passes(obj):\n    assert obj.aura_warm_up(1)[0] == 1\n\n"
              "def test_fails(obj):\n    assert obj.aura_warm_up(2) == []\n"},
)


def warm_up():
    # CPython 3.11 rewrites a function's bytecode in place during its first calls
    # (quickening, then specialisation) and fills a global cache of type attribute
    # look-ups. Done in each child, those writes copy pages of the server's memory (a
    # copy-on-write fault apiece, and a page more for exit to free). Done here, once, on
    # trusted code, a child's call copies about 50 fewer pages (of some 240).
    # Nothing of it stays behind but that warmth: linecache and the counters are reset.
    for _ in range(4):  # more gains nothing measurable
        for req in WARM_UP_REQUESTS:
            out, err = Capture(1 << 16), Capture(1 << 16)
            sys.stdout, sys.stderr = out, err
            try:
                dumps(run_request(req, 1 << 16))
            finally:
                sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    for filename, _ in request_sources(WARM_UP_REQUESTS[1]):
        linecache.cache.pop(filename, None)
    RunState.compiled = 0
    RunState.flooded = False


def read_raw_frame(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    return read_exact(fd, n)


def child_main(rfd, wfd, cfg, jailed):
    # Locked down first, then wait for the request: no guest code runs before both.
    setup_error = None
    try:
        prepare_child(cfg, jailed)
    except BaseException as e:
        setup_error = "%s: %s" % (type(e).__name__, e)
    body = read_raw_frame(rfd)
    if body is None:
        os._exit(0)
    os.close(rfd)
    req = None
    if setup_error is None:
        try:
            # The server re-encoded the request with marshal: cheaper to read than JSON
            # (see serve_one), and it comes from the server, not from the host.
            req = marshal.loads(body)
            del body
            apply_limits(cfg, req["limits"])
        except BaseException as e:
            setup_error = "%s: %s" % (type(e).__name__, e)
    if setup_error is not None:
        write_all(wfd, dumps({"setup_error": setup_error}).encode())
        os._exit(70)
    out_cap = int(req["limits"]["output_bytes"])
    out, err = Capture(out_cap), Capture(out_cap)
    RunState.wfd, RunState.captures = wfd, (out, err)
    sys.stdout, sys.stderr = out, err
    try:
        reply = run_request(req, out_cap)
    except BaseException:
        reply = {"ended": "output_limit" if RunState.flooded else "memory"}
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        reply["stdout"] = out.text()
        reply["stderr"] = err.text()
        reply["compiled"] = RunState.compiled
        body = dumps(reply).encode("utf-8", "replace")
    except BaseException:
        body = b'{"ended":"memory"}'
    # The reply ends with a trailer: a marker the server recognises as "complete", and
    # this child's own CPU time and peak RSS. Closing the pipe before exiting lets the
    # server answer at end-of-file instead of waiting for this address space to be torn
    # down (a pipe's last close otherwise comes only after exit has freed the memory).
    ru = resource.getrusage(resource.RUSAGE_SELF)
    trailer = REPLY_END + struct.pack(
        ">II", int((ru.ru_utime + ru.ru_stime) * 1000), int(ru.ru_maxrss))
    try:
        write_all(wfd, body + trailer)
        os.close(wfd)
    except BaseException:
        os._exit(71)
    os._exit(0)


class Spare:
    """A forked child, locked down and waiting for its request on a pipe."""

    def __init__(self, pid, req_w, rep_r, pidfd):
        self.pid, self.req_w, self.rep_r, self.pidfd = pid, req_w, rep_r, pidfd

    @staticmethod
    def fork(cfg, jailed):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # os.fork runs CPython's after-fork bookkeeping in the child (locks and thread
        # states made anew, the at-fork hooks): some 60 copy-on-write faults, a sixth of
        # a child's, in a process that has one thread and holds no lock. The one hook
        # that matters here, random's reseed, the child runs itself (prepare_child).
        pid = FORK()
        if pid < 0:
            raise errno_error("fork")
        if pid == 0:
            try:
                # Only its own two pipe ends (0-2 become /dev/null in prepare_child):
                # not the forker's socket, its pid namespace handle, nor any pipe of a
                # call running beside it.
                lo, hi = sorted((req_r, rep_w))
                os.closerange(3, lo)
                os.closerange(lo + 1, hi)
                os.closerange(hi + 1, MAX_FD)
                child_main(req_r, rep_w, cfg, jailed)
            finally:
                os._exit(72)
        os.close(req_r)
        os.close(rep_w)
        return Spare(pid, req_w, rep_r, os.pidfd_open(pid))

    def hand(self, body):
        # False when the spare died before it got its request.
        try:
            write_all(self.req_w, struct.pack(">I", len(body)) + body)
            return True
        except OSError:
            self.discard()
            return False
        finally:
            if self.req_w >= 0:
                os.close(self.req_w)
                self.req_w = -1

    def discard(self):
        kill(self.pid)
        REAPER.reap_later(self.pid)
        for fd in (self.req_w, self.rep_r, self.pidfd):
            if fd >= 0:
                os.close(fd)
        self.req_w = self.rep_r = self.pidfd = -1


# ---------------------------------------------------------------- the forker (jail mode)
#
# A fork costs the process that forks as much as the child: every page it writes
# afterwards takes a copy-on-write fault while the child lives. So in jail mode the
# server forks once, a *forker* (a copy of the clean server, before any request), and
# the forker forks every child from then on. The server, which reads requests and
# supervises children, then writes only to pages of its own, and the forker makes the
# next request's child while the current one runs. A back-to-back call never waits for
# a fork.
#
# Each child is made pid 1 of a pid namespace of its own: a guest sees, and can signal,
# no other process, neither the next child, ready beside it, nor the forker.
#
# Server -> forker, on a socket pair: CMD records, with a payload for "S".
#   "S" len payload: make a spare (the payload, a request's (filename, source) pairs as
#                    JSON, is compiled into the code cache first, so the spare
#                    inherits it);
#   "W" pid:        wait for the child and answer its status and resources;
#   "R" pid:        the child was killed: reap it when it is gone.
# Forker -> server: first one frame, {"ready": true} once its set-up is done or
# {"fatal": why}; then RECORD records; a SPARE record carries the spare's request pipe,
# reply pipe and pidfd as SCM_RIGHTS.
CMD = struct.Struct(">cII")  # op, pid, payload length
RECORD = struct.Struct(">6i")  # kind, pid, wait status, cpu ms, peak rss KiB, unused
SPARE, STATUS = 1, 2
PID_NS = -1  # the forker's handle on its own pid namespace


def wait_child(pid):
    """Waits for a child: its wait status, CPU milliseconds and peak RSS in KiB."""
    _, status, ru = os.wait4(pid, 0)
    return status, int((ru.ru_utime + ru.ru_stime) * 1000), int(ru.ru_maxrss)


class LocalReaper:
    """Plain mode: the server forks its children itself, and waits for them."""

    wait = staticmethod(wait_child)

    @staticmethod
    def reap_later(pid):
        UNREAPED.append(pid)

    @staticmethod
    def watched():
        return []


class Forker:
    """Jail mode: the server's end of its forker."""

    def __init__(self, cfg):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                forker_main(theirs, cfg)
            finally:
                os._exit(73)
        theirs.close()
        os.close(PID_NS)  # only the forker makes namespaces
        # Its set-up (the filters every child inherits) fails here, in words, rather
        # than as a server that dies at its first request.
        started = read_frame(ours.fileno())
        if not (started or {}).get("ready"):
            raise OSError("the forker did not start: %s"
                          % (started or {}).get("fatal", "it exited"))
        self.sock, self.spares = ours, []
        self.last_sources = None  # those of the last request sent for the code cache
        # Hashes of the sources seen once, most recent last (see cacheable).
        self.seen = OrderedDict()
        self.seen_limit = 4 * max(0, int((cfg.get("code_cache") or {}).get("entries", 0)))

    def cacheable(self, sources):
        """The sources worth caching: those seen before. A search's candidates are each
        run once; caching them would fill the cache (and the forker's memory, which
        every fork copies) with code no later call uses, and push out what calls do
        use. A source seen again, a method being called, is cached from its second
        sighting on."""
        out = []
        for key in sources:
            h = hash(key)
            if h in self.seen:
                self.seen.move_to_end(h)
                out.append(key)
            else:
                self.seen[h] = None
                while len(self.seen) > self.seen_limit:
                    self.seen.popitem(last=False)
        return out

    def ask(self, body=b""):
        self.sock.sendall(CMD.pack(b"S", 0, len(body)) + body)

    def take(self):
        while not self.spares:
            self.receive()
        return self.spares.pop(0)

    def receive(self):
        """Reads one record: stores a spare (None), or returns a status (pid, ...)."""
        msg, fds, _, _ = socket.recv_fds(self.sock, RECORD.size, 3)
        if 0 < len(msg) < RECORD.size:
            msg += read_exact(self.sock.fileno(), RECORD.size - len(msg)) or b""
        if len(msg) != RECORD.size:
            # The forker is gone: this server cannot make children any more. Dying
            # kills the namespace (a running guest with it) and tells the host.
            os._exit(74)
        kind, pid, status, cpu_ms, rss_kib, _ = RECORD.unpack(msg)
        if kind == SPARE and len(fds) == 3:
            self.spares.append(Spare(pid, *fds))
            return None
        if kind == STATUS and not fds:
            return pid, status, cpu_ms, rss_kib
        os._exit(74)

    def wait(self, pid):
        self.sock.sendall(CMD.pack(b"W", pid, 0))
        while True:
            got = self.receive()
            if got is not None and got[0] == pid:
                return got[1:]

    def reap_later(self, pid):
        self.sock.sendall(CMD.pack(b"R", pid, 0))

    def watched(self):
        # Readable when a spare arrives, or at end-of-file when the forker died.
        return [self.sock.fileno()]


def forker_main(sock, cfg):
    # Trusted code only, like the server: it never runs guest code, it compiles and
    # forks. Not the host's pipes: the host must see end-of-file when the server dies.
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (HOST_IN, HOST_OUT):
        os.dup2(devnull, fd)
    os.close(devnull)
    fd = sock.fileno()
    try:
        install_inherited_filters(cfg)
    except BaseException as e:
        write_frame(fd, {"fatal": "%s: %s" % (type(e).__name__, e)})
        raise
    write_frame(fd, {"ready": True})
    killed = []
    while True:
        killed = reap_killed(killed)
        head = read_exact(fd, CMD.size)
        if head is None:
            os._exit(0)
        op, pid, n = CMD.unpack(head)
        payload = read_exact(fd, n) if n else b""
        if payload is None:
            os._exit(0)
        if op == b"S":
            if payload:
                remember(payload)
            del payload
            check(LIBC.setns(PID_NS, CLONE_NEWPID), "setns (pid)")
            check(LIBC.unshare(CLONE_NEWPID), "unshare (pid)")
            spare = Spare.fork(cfg, True)
            fds = [spare.req_w, spare.rep_r, spare.pidfd]
            socket.send_fds(sock, [RECORD.pack(SPARE, spare.pid, 0, 0, 0, 0)], fds)
            for x in fds:
                os.close(x)
        elif op == b"W":
            sock.sendall(RECORD.pack(STATUS, pid, *wait_child(pid), 0))
        elif op == b"R":
            killed.append(pid)


def remember(payload):
    # Compiles the request's new sources, so that children forked later inherit them.
    # Never fatal: the cache only saves work.
    try:
        added = CODE_CACHE.remember(json.loads(payload))
    except Exception:
        added = False
    if added:
        gc.collect()
        gc.freeze()


def reap_killed(pids):
    # Without blocking: a child still tearing down its memory is reaped on a later turn.
    pending = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done == 0:
            pending.append(pid)
    return pending


REAPER = LocalReaper  # a Forker in jail mode


def next_child(body, cfg, jailed):
    # The child that serves this request, handed it.
    if not jailed:
        child = Spare.fork(cfg, False)
        if child.hand(body):
            return child
    else:
        for _ in range(2):
            child = REAPER.take()
            if child.hand(body):
                return child
            REAPER.ask()
    raise OSError("a fresh child died before its request")


def serve_one(req, cfg, jailed):
    limits = req["limits"]
    cap = 4 * int(limits["output_bytes"]) + (1 << 20)
    t0 = time.monotonic()
    # The child gets the request as the server parsed it, in marshal's format: decoding
    # it touches a few pages of the child's copy of the server, decoding the JSON again
    # would touch the json package's (each page a copy-on-write fault).
    child = next_child(marshal.dumps(req), cfg, jailed)
    if jailed:
        # The next request's child is made while this one runs, after the forker has
        # compiled this request's sources worth caching (none sent when they are the
        # last request's: a repeated call costs the forker no parsing).
        sources = REAPER.cacheable(request_sources(req))
        if not sources or sources == REAPER.last_sources:
            REAPER.ask()
        else:
            REAPER.ask(json.dumps(sources).encode())
            REAPER.last_sources = sources
    pid, r, pidfd = child.pid, child.rep_r, child.pidfd
    deadline = t0 + int(limits["wall"]) / 1000.0
    buf = bytearray()
    timed_out = overflow = exited = False
    reading = True
    forker = REAPER.watched()
    while reading or not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        fds = ([r] if reading else []) + ([pidfd] if not exited else []) + forker
        ready, _, _ = select.select(fds, [], [], left)
        if forker and forker[0] in ready:
            REAPER.receive()
        if r in ready:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                reading = False
                if not exited and complete(buf):
                    # The reply is whole and the pipe closed: answer now. The child is
                    # only exiting; SIGKILL makes sure nothing of it runs on, and it is
                    # reaped after the answer went out.
                    answer_early(pid, r, pidfd, buf, t0)
                    return
            else:
                buf += chunk
                if len(buf) > cap:
                    overflow = True
                    break
        if pidfd in ready:
            exited = True
            # Drain what the child wrote before it died.
            while reading:
                ready, _, _ = select.select([r], [], [], 0)
                if not ready:
                    break
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    reading = False
                else:
                    buf += chunk
                    if len(buf) > cap:
                        overflow = True
                        reading = False
    if timed_out or overflow or not exited:
        kill(pid)
        # A big address space takes a while to tear down: answer now, reap later.
        if not select.select([pidfd], [], [], 0.02)[0]:
            meta = {"timed_out": timed_out, "overflow": overflow, "exit_code": None,
                    "signal": signal.SIGKILL, "wall_ms": int((time.monotonic() - t0) * 1000),
                    "cpu_ms": 0, "peak_rss_kib": 0}
            answer_unreaped(pid, r, pidfd, meta, b"")
            return
    status, cpu_ms, rss_kib = REAPER.wait(pid)
    whole = complete(buf)
    if whole:
        del buf[-TRAILER_LEN:]
    wall_ms = int((time.monotonic() - t0) * 1000)
    os.close(r)
    os.close(pidfd)
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if jailed and exit_code == EXIT_XCPU and not whole:
        exit_code, sig = None, signal.SIGXCPU  # see apply_limits
    meta = {
        "timed_out": timed_out,
        "overflow": overflow,
        "exit_code": exit_code,
        "signal": sig,
        "wall_ms": wall_ms,
        "cpu_ms": cpu_ms,
        "peak_rss_kib": rss_kib,
    }
    write_frame(HOST_OUT, meta)
    write_frame_bytes(HOST_OUT, b"" if (timed_out or overflow) else bytes(buf))


def complete(buf):
    return len(buf) >= TRAILER_LEN and buf[-TRAILER_LEN:-8] == REPLY_END


def answer_early(pid, r, pidfd, buf, t0):
    kill(pid)
    cpu_ms, rss_kib = struct.unpack(">II", bytes(buf[-8:]))
    del buf[-TRAILER_LEN:]
    meta = {"timed_out": False, "overflow": False, "exit_code": 0, "signal": None,
            "wall_ms": int((time.monotonic() - t0) * 1000),
            "cpu_ms": cpu_ms, "peak_rss_kib": rss_kib}
    answer_unreaped(pid, r, pidfd, meta, bytes(buf))


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def answer_unreaped(pid, r, pidfd, meta, body):
    # The child is killed but may still be tearing down: answer now, reap it later.
    os.close(r)
    os.close(pidfd)
    REAPER.reap_later(pid)
    write_frame(HOST_OUT, meta)
    write_frame_bytes(HOST_OUT, body)


UNREAPED = []  # children killed and answered for, not yet waited


def reap_all_killed():
    # Plain mode, before the next request: every child of the last one must be gone.
    for pid in UNREAPED:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    UNREAPED[:] = []


def empty_dir(root):
    # Plain mode runs a batch's children one after another in one container, all with
    # /scratch as their working directory: empty it between them (the children are
    # dead), so that one cannot read what another wrote. Symlinks are removed, never
    # followed; a directory a guest made unreadable is made ours again. Only names
    # relative to open directories, at most two levels down (a nested entry is moved
    # up, then its emptied directory removed), so no depth of nesting is too deep.
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o700)
        moved = 0
        while True:
            names = os.listdir(fd)
            if not names:
                return
            for name in names:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(name, dir_fd=fd)
                    continue
                os.chmod(name, 0o700, dir_fd=fd)
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    for inner in os.listdir(sub):
                        while True:
                            moved += 1
                            up = ".aura-moved-%d" % moved
                            try:
                                os.stat(up, dir_fd=fd, follow_symlinks=False)
                            except FileNotFoundError:
                                break
                        os.rename(inner, up, src_dir_fd=sub, dst_dir_fd=fd)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


IPC_RMID = 0


def purge_ipc():
    # Plain mode, between requests: SysV objects outlive the child that made them, and
    # the container's IPC namespace is one for the whole batch. The children ran with
    # this server's uid, so it may remove what they made. POSIX message queues are the
    # files of /dev/mqueue (emptied with the scratch).
    for kind, rm in (("shm", lambda i: LIBC.shmctl(i, IPC_RMID, None)),
                     ("msg", lambda i: LIBC.msgctl(i, IPC_RMID, None)),
                     ("sem", lambda i: LIBC.semctl(i, 0, IPC_RMID))):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            check(rm(int(row.split()[1])), "removing a SysV %s object" % kind)


def baseline_vm_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 64 << 20


def main():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    jailed = MODE == "jail"
    if not jailed:
        # Plain mode: the children run with this server's uid and no capabilities, so
        # only this keeps them out of its memory and pipes (/proc/1/mem, /proc/1/fd):
        # a batch's later requests, and the answers to them, pass through it.
        LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    cfg = read_frame(HOST_IN)
    if cfg is None:
        return
    # No guest needs the host's environment; every child inherits this empty one.
    os.environ.clear()
    global API_LAYER, CODE_CACHE, PID_NS, REAPER
    try:
        if cfg.get("api"):
            API_LAYER = ApiLayer(cfg["api"])
        if jailed:
            CODE_CACHE = CodeCache(cfg.get("code_cache"))
        FILTERS.extend(prepare_filters(cfg, "seccomp"))
        cfg["baseline_vm_bytes"] = baseline_vm_bytes() + (16 << 20)
        if jailed:
            enter_namespaces(os.getuid(), os.getgid())
            PID_NS = os.open("/proc/self/ns/pid", os.O_RDONLY)  # before /proc is gone
            build_root(cfg)
            drop_bounding_set()
        else:
            install_inherited_filters(cfg)  # in jail mode, the forker's
        warm_up()
        # Objects the server made never change again: keep the child's garbage
        # collector off their pages, so that a fork copies as little as possible.
        gc.collect()
        gc.freeze()
        if jailed:
            REAPER = Forker(cfg)
    except BaseException as e:
        write_frame(HOST_OUT, {"fatal": "%s: %s" % (type(e).__name__, e)})
        return
    write_frame(HOST_OUT, {"ready": True, "python": sys.version.split()[0]})
    if jailed:
        REAPER.ask()
    while True:
        body = read_raw_frame(HOST_IN)
        if body is None:
            return
        req = from_host(body)
        del body
        serve_one(req, cfg, jailed)
        del req
        if not jailed:
            # The next request gets a fresh child and an empty scratch. A failure here
            # would let the next see this one's leftovers: stop serving instead.
            reap_all_killed()
            try:
                empty_dir("/scratch")
                if os.path.isdir("/dev/mqueue"):
                    empty_dir("/dev/mqueue")
                purge_ipc()
            except OSError:
                return


main()
