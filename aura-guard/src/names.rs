//! The name lists the rules consult. Every list is matched against NFKC-normalised
//! identifiers. The lists the sandbox's runtime layer enforces too (module APIs,
//! builtins, frame attributes) live in `data/module_api.json` (`crate::api`).

/// Modules that are denied with a specific reason, even though the allowlist
/// already denies them, so the model learns why.
pub(crate) fn dangerous_module_reason(module: &str) -> Option<&'static str> {
    Some(match module {
        "os" | "posix" | "nt" | "posixpath" | "ntpath" | "pty" | "fcntl" | "resource" | "pwd"
        | "grp" => "it gives access to the host's processes, files and environment",
        "sys" => "it exposes the interpreter's internals (modules, frames, builtins)",
        "subprocess" | "multiprocessing" | "concurrent" | "threading" | "_thread" | "signal"
        | "asyncio" | "sched" => "methods may not start processes, threads or event loops",
        "socket" | "ssl" | "http" | "urllib" | "ftplib" | "smtplib" | "requests" | "selectors"
        | "select" | "webbrowser" => "methods have no network access",
        "shutil" | "pathlib" | "io" | "_io" | "tempfile" | "glob" | "fileinput" | "linecache"
        | "codecs" | "zipfile" | "tarfile" | "gzip" | "bz2" | "lzma" | "zipimport" | "mmap" => {
            "methods have no file access"
        }
        "pickle" | "_pickle" | "dill" | "marshal" | "shelve" | "copyreg" | "cloudpickle" => {
            "serialising code objects can run arbitrary code"
        }
        "ctypes" | "cffi" | "_ctypes" => "it allows raw memory access",
        "gc" | "inspect" | "traceback" | "types" | "dis" | "code" | "codeop" | "ast"
        | "symtable" | "tracemalloc" | "faulthandler" | "weakref" | "atexit" => {
            "it gives introspection of frames, code objects or the heap"
        }
        "importlib" | "builtins" | "__builtin__" | "runpy" | "imp" | "pkgutil" | "site"
        | "sysconfig" | "__future__" | "__main__" => "it can load code or reach the builtins",
        "pdb" | "bdb" | "trace" | "cProfile" | "profile" | "timeit" | "doctest" | "pydoc"
        | "unittest" => "it can run or introspect arbitrary code",
        _ => return None,
    })
}

/// Builtins that may not be referenced at all (by call or by name), with the reason
/// shown to the model.
pub(crate) fn denied_builtin_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "exec" | "eval" | "compile" => "running code built from strings is not allowed",
        "__import__" => "imports must be plain import statements of allowed modules",
        "open" => "methods have no file access",
        "globals" | "vars" | "locals" => "namespace introspection is not allowed",
        "breakpoint" | "input" | "help" => "methods cannot be interactive",
        "exit" | "quit" => "methods may not stop the interpreter; raise an exception instead",
        "memoryview" => "raw buffer access is not allowed",
        "copyright" | "credits" | "license" => "interactive helpers are not available",
        "__build_class__" | "__loader__" | "__spec__" | "__builtins__" => {
            "interpreter internals are not accessible"
        }
        _ => return None,
    })
}

/// Library functions that evaluate strings as code (directly or via annotations),
/// rejected wherever they are named: as a bare name, an attribute or an import.
pub(crate) fn eval_like_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "get_type_hints"
        | "ForwardRef"
        | "evaluate_forward_ref"
        | "get_annotations"
        | "call_annotate_function" => "it evaluates annotation strings as code",
        "singledispatch" | "singledispatchmethod" => {
            "it evaluates annotation strings as code when registering"
        }
        _ => return None,
    })
}

/// Names that reach attributes from a string: `getattr` & co. (allowed only when
/// called directly with a safe literal name).
pub(crate) fn is_getattr_family(name: &str) -> bool {
    matches!(name, "getattr" | "setattr" | "delattr" | "hasattr")
}

/// Attribute or imported names that build attribute access from strings.
pub(crate) fn is_dynamic_attribute_helper(name: &str) -> bool {
    matches!(name, "attrgetter" | "methodcaller")
}

/// Attribute or imported names that run `str.format` field paths on a string
/// chosen at run time.
pub(crate) fn is_formatter_name(name: &str) -> bool {
    matches!(name, "Formatter" | "vformat" | "get_field")
}

/// Attribute names that are dangerous modules, rejected on objects that are not a
/// module the guard knows (`x.os`, `obj.sys`). Attributes of known modules are
/// checked against their API allowlist instead (`crate::api`).
pub(crate) fn is_module_attribute(name: &str) -> bool {
    matches!(
        name,
        "os" | "sys"
            | "subprocess"
            | "builtins"
            | "importlib"
            | "ctypes"
            | "inspect"
            | "gc"
            | "io"
            | "codecs"
            | "posix"
            | "nt"
            | "marshal"
            | "pickle"
            | "shutil"
            | "socket"
            | "signal"
            | "threading"
            | "linecache"
            | "traceback"
            | "runpy"
            | "pathlib"
            | "tempfile"
    )
}

/// Names that the guard treats specially and that therefore may not be rebound
/// (by assignment, parameter, definition or import alias).
pub(crate) fn is_guard_relevant(name: &str) -> bool {
    is_getattr_family(name) || name == "super"
}

/// Attributes refused on names that hold an exception the method did not make (bound
/// by `except ... as e`, or `__exit__`'s parameters), with why: they hand back names,
/// paths or objects from inside the code that failed. `args` and the message stay.
pub(crate) fn exception_attribute_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "obj" => "hands back the object a failed lookup was made on",
        "name" | "name_from" => "hands back a name the failing code looked up",
        "path" | "filename" | "filename2" => "hands back a path from the failing code",
        "object" => "hands back the object a codec failed on",
        "exceptions" => "hands back every exception of a group, each with its own attributes",
        _ => return None,
    })
}

/// `enum`'s classes whose call with a name and members builds a new class.
pub(crate) fn is_enum_class(name: &str) -> bool {
    matches!(
        name,
        "Enum" | "IntEnum" | "StrEnum" | "Flag" | "IntFlag" | "ReprEnum"
    )
}

/// Dunder method names a helper class may define.
pub(crate) fn is_allowed_dunder_method(name: &str) -> bool {
    matches!(
        name,
        "__init__"
            | "__post_init__"
            | "__repr__"
            | "__str__"
            | "__format__"
            | "__eq__"
            | "__ne__"
            | "__lt__"
            | "__le__"
            | "__gt__"
            | "__ge__"
            | "__hash__"
            | "__bool__"
            | "__len__"
            | "__iter__"
            | "__next__"
            | "__reversed__"
            | "__contains__"
            | "__getitem__"
            | "__setitem__"
            | "__delitem__"
            | "__missing__"
            | "__call__"
            | "__enter__"
            | "__exit__"
            | "__add__"
            | "__radd__"
            | "__iadd__"
            | "__sub__"
            | "__rsub__"
            | "__isub__"
            | "__mul__"
            | "__rmul__"
            | "__imul__"
            | "__matmul__"
            | "__truediv__"
            | "__rtruediv__"
            | "__itruediv__"
            | "__floordiv__"
            | "__rfloordiv__"
            | "__ifloordiv__"
            | "__mod__"
            | "__rmod__"
            | "__divmod__"
            | "__pow__"
            | "__rpow__"
            | "__neg__"
            | "__pos__"
            | "__abs__"
            | "__invert__"
            | "__and__"
            | "__rand__"
            | "__or__"
            | "__ror__"
            | "__xor__"
            | "__rxor__"
            | "__lshift__"
            | "__rshift__"
            | "__int__"
            | "__float__"
            | "__index__"
            | "__round__"
            | "__floor__"
            | "__ceil__"
            | "__trunc__"
    )
}

/// `__x__`.
pub(crate) fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}
