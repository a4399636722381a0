# AURA sandbox boot: runs runner.py (the last argument) with none of its compiler's
# garbage in this process. Started as `python3 -I -S -B -c <this file> MODE <runner.py>`.
#
# Parsing 1,600 lines leaves about 3 MB of freed but still mapped heap behind, and every
# child the server forks copies its page tables and tears them down again at exit (in
# the jail, one child per call). So a throw-away child compiles the runner and sends the
# code back marshalled; loading it leaves only the code objects themselves.
import marshal
import os
import sys

source = sys.argv.pop()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        data = memoryview(marshal.dumps(compile(source, "<runner>", "exec")))
        while data:
            data = data[os.write(w, data):]
    finally:
        os._exit(0)
os.close(w)
del source
parts = []
while True:
    part = os.read(r, 1 << 16)
    if not part:
        break
    parts.append(part)
os.close(r)
os.waitpid(pid, 0)
runner = marshal.loads(b"".join(parts))
del parts, part, r, w, pid
# In this module's namespace: the runner is __main__, as if started with `-c` itself.
exec(runner)
