"""The checkpoint writer that runs in every pod of the StatefulSet (the "LLM checkpointing container").

It is the reference for doing checkpoints right: every claim the harness verifies is judged
against its contract in ``docs/durability.md``. Imports only the standard library, blake3 and
:mod:`harness.facts` (import-linter keeps it free of cluster and load code), so the container
image needs nothing else; a library format (``--format``, docs/formats.md) imports its library
(safetensors + numpy, torch, or jax + orbax) when it is chosen, never before. Entry points:
``harness writer serve`` and the lean ``python -m harness.workload serve`` (same flags, faster start).

Modules, one job each:

* ``layout``    names on the volume (``checkpoints/step-%012d``, ``.tmp-<step>-<hex>``, ``identity.json``)
* ``manifest``  the manifest and its own BLAKE3 digest (why BLAKE3: see there)
* ``payload``   fast, incompressible, never-repeating shard bytes
* ``fsutil``    the syscalls of the protocol behind one seam (tests inject ENOSPC/EIO there)
* ``store``     the publish protocol, step reservation, keep-last-K retention
* ``validate``  what makes a directory under a final name a valid checkpoint (shared)
* ``recovery``  boot recovery: remove temp dirs, validate newest first, report the latest valid step
* ``identity``  the volume's identity stamp; a wrong volume makes the pod unready, untouched
* ``api``       strict parsing of POST /checkpoints
* ``server``    the HTTP API (stdlib ThreadingHTTPServer; why: see there)
* ``app``       boot order and readiness;  ``serve``  the process (signals, drain, exit codes)
* ``verify``    the offline verifier behind ``harness verify DIR --json`` (reads only)
* ``bench``     ``harness writer bench`` / ``make bench``;  ``rss_probe``  its clean-RSS subprocess
* ``formats``   library checkpoint formats (docs/formats.md): variants, detection, the shared steps;
  ``fmt_safetensors``, ``fmt_dcp``, ``fmt_orbax`` each library's save and reader (imported only
  when used);  ``tensors``  the seeded tensors a request becomes, and their digests

NEGATIVE CONTROLS (tests only): ``--unsafe-skip=STEP[,STEP]`` or ``WRITER_UNSAFE_SKIP`` makes the
writer skip publish-protocol steps — ``file-fsync``, ``flush``, ``tmpdir-fsync``,
``parent-fsync``, ``atomic-rename`` (see :data:`config.ProtocolStep` for each one's crash
signature). Off by default; when set, the writer logs an ``UNSAFE-PROTOCOL`` event at start
and reports the skipped steps in ``/readyz`` and ``/identity`` so no run can mistake it for
the real writer.
"""
