"""Apply: execute a saved plan as journaled, resumable steps; release (unmanage).

* :mod:`.runner` - the Applier: safety checks, shared records, per-VM steps,
  the journal, retries of temporary errors;
* :mod:`.bulk` - the pipeline of chunks and the bulk writes (ports, Nova
  records through one helper, allocations);
* :mod:`.steps` - the ``ensure_*`` executors, each idempotent; host steps go
  to the VM's driver (:mod:`os_onboard.drivers.adoption`);
* :mod:`.release` - ``unmanage``, also the rollback;
* :mod:`.lock`, :mod:`.outcome` - one apply at a time; what is reported per VM.
"""
