"""``os-onboard serve``: the versioned REST API (``/v1``) over the state store.

The stack, chosen to be small and inside OpenStack's upper-constraints
(2025.1), so os-onboard still installs beside the OpenStack services:

* **WSGI, served by gunicorn** (``gthread`` worker): Keystone's own
  ``keystonemiddleware.auth_token`` is WSGI middleware, so a WSGI app takes
  it as it is (an ASGI server would need a bridge, and uvicorn's WSGI one is
  deprecated); gunicorn is a production pre-fork server with a master that
  restarts a dead worker, and it is what the lab's OpenStack APIs run on.
* **WebOb** for requests and responses, and a route table of our own
  (:mod:`.routes`): WebOb comes with keystonemiddleware anyway, and the one
  table gives routing, the policy rule of every route and the OpenAPI 3
  document (``/v1/openapi.json``) - no web framework to add.
* **keystonemiddleware** (tokens), **oslo.policy** (``reader`` reads,
  ``admin`` writes; :mod:`.policy`) and **oslo.config** (the config file,
  :mod:`.config`), as every OpenStack API does.
* **tooz on etcd** (:mod:`os_onboard.coordination`) for several replicas.

Modules: :mod:`.config`, :mod:`.policy`, :mod:`.web` (the one error shape,
request ids), :mod:`.routes`, :mod:`.api` (the handlers), :mod:`.app` (the
WSGI pipeline), :mod:`.jobs` (the job runner), :mod:`.server` (gunicorn).
"""
