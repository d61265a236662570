"""The only module that imports pyVmomi.

Everything the vSphere driver asks of the API goes through here: log in,
read many objects with one PropertyCollector over a ContainerView
(``RetrievePropertiesEx`` with paging, only the property paths asked for),
and follow changes with ``WaitForUpdatesEx``. Results leave this module as
:class:`RawObject` / :class:`RawUpdate` whose top-level managed-object
references are plain moid strings; nested data objects (devices, guest NICs)
are passed through and read by attribute name, so the conversion in
``properties.py`` runs in unit tests on plain fakes. Foreign exceptions are
translated to os-onboard's tree here.

Bulk answers are parsed by soapxml.py (ElementTree, fields converted when
read) rather than by pyVmomi's Python-level deserialiser, which costs most of
the time at 10,000 VMs; requests, sessions and faults stay pyVmomi's.

Discovery only reads (the one write, :func:`reconfigure_extra_config`, is the
adoption's, named in its plan): the calls made are Login/Logout, CreateContainerView /
DestroyView, CreatePropertyCollector / CreateFilter / DestroyPropertyCollector
(session-scoped helpers), RetrievePropertiesEx, ContinueRetrievePropertiesEx
and WaitForUpdatesEx. None changes the inventory.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import VmomiSupport, vim, vmodl

from os_onboard.drivers.vsphere.endpoint import Endpoint
from os_onboard.drivers.vsphere.raw import RawObject, RawUpdate
from os_onboard.drivers.vsphere.soapxml import FieldInfo, ReplyReader
from os_onboard.exceptions import DiscoveryError, HostUnreachable, HostWriteError

_PC = vmodl.query.PropertyCollector
LOG = logging.getLogger(__name__)

#: Errors that mean "the endpoint is gone or the link broke": retry later.
_LINK_ERRORS = (OSError, http.client.HTTPException, socket.timeout)


class Session:
    """A logged-in session to one endpoint. Not thread-safe: one user at a time."""

    def __init__(self, si: Any, endpoint: Endpoint) -> None:
        self._si = si
        self.endpoint = endpoint
        self._content = si.RetrieveContent()

    def about(self) -> dict[str, str | None]:
        about = self._content.about
        return {k: getattr(about, k, None) for k in
                ("name", "fullName", "version", "build", "instanceUuid", "apiType")}

    def retrieve(self, paths: Mapping[str, Sequence[str]],
                 page_size: int = 1000) -> Iterator[RawObject]:
        """Every object of the types in ``paths`` under the root folder, with those paths.

        One ContainerView, one filter spec, ``maxObjects`` per page: the
        number of round trips grows with objects / page_size, never per VM.
        Objects stream out as each page is parsed and each is let go once
        yielded, so a caller that builds and drops them holds one page's raw
        reply and a slice of its elements, not the endpoint's tree (~60 MiB
        per 1,000 VMs). While a page is parsed and built, the next one is
        already being asked for (:meth:`_objects`), so the endpoint's
        serialising overlaps our work.
        """
        with self._guard("retrieve properties"), self._view(list(paths)) as view:
            options = _PC.RetrieveOptions(maxObjects=page_size)
            first = ("RetrievePropertiesEx", [[_filter_spec(view, paths)], options])
            yield from self._objects(first)

    def _objects(self, first: tuple[str, list[Any]]) -> Iterator[RawObject]:
        """The objects of every page of one retrieval, in order.

        Each page is parsed as its objects are taken (soapxml.ReplyReader) and
        the next page is fetched while this one is used: its token is peeked
        from the end of this page's raw reply (:func:`_peek_token`) and its
        request sent on a helper thread, which only waits on the socket (the
        GIL is free meanwhile) while this thread parses and builds. One
        request is in flight at a time, so the pyVmomi stub still has one
        user at a time. The token the parse finds must be the one peeked; if
        the peek found none, the next page is fetched after the parse.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="vsphere-page") as pool:
            pending: Future[bytes | None] | None = pool.submit(self._fetch, *first)
            request = first
            while pending is not None:
                body = pending.result()
                pending = None
                if body is None:  # not a 200: pyVmomi calls again and raises the fault
                    objects, token = self._retrieve_slow(*request)
                    yield from objects
                else:
                    peeked = _peek_token(body)
                    if peeked:
                        request = ("ContinueRetrievePropertiesEx", [peeked])
                        pending = pool.submit(self._fetch, *request)
                    reader = ReplyReader(body, _schema)
                    del body  # the reader's reference is the only one
                    yield from reader
                    token = reader.token
                    if peeked and token != peeked:
                        raise DiscoveryError("a reply's paging token is not where "
                                             "expected (malformed reply)")
                if token and pending is None:
                    request = ("ContinueRetrievePropertiesEx", [token])
                    pending = pool.submit(self._fetch, *request)

    def _fetch(self, method: str, args: list[Any]) -> bytes | None:
        """One page's raw reply (None if not a 200); runs on the helper thread."""
        return _post(self._si._stub, self._content.propertyCollector, method, args)

    def _retrieve_slow(self, method: str, args: list[Any]) -> tuple[list[RawObject],
                                                                     str | None]:
        """One page through pyVmomi's own deserialiser (for faults).

        The fast path (:meth:`_objects`) serialises the request with pyVmomi
        and sends it on its connection with its session cookie; only the
        answer is parsed differently.
        """
        result = getattr(self._content.propertyCollector, method)(*args)
        if result is None:
            return [], None
        return [_raw_object(c) for c in result.objects or ()], result.token

    def updates(self, paths: Mapping[str, Sequence[str]],
                wait_seconds: int) -> Iterator[list[RawUpdate]]:
        """Follow changes of ``paths``; yields one list per ``WaitForUpdatesEx`` answer.

        The first list is the current state (every object as "enter"); an
        empty list means no change within ``wait_seconds``, which lets the
        caller check whether to stop.
        """
        with self._guard("wait for updates"), self._view(list(paths)) as view:
            collector = self._content.propertyCollector.CreatePropertyCollector()
            try:
                collector.CreateFilter(_filter_spec(view, paths), partialUpdates=False)
                options = _PC.WaitOptions(maxWaitSeconds=wait_seconds)
                version = ""
                while True:
                    result = collector.WaitForUpdatesEx(version, options)
                    if result is None:
                        yield []
                        continue
                    version = result.version
                    yield [_raw_update(update) for fs in result.filterSet or ()
                           for update in fs.objectSet or ()]
            finally:
                with contextlib.suppress(Exception):
                    collector.DestroyPropertyCollector()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            Disconnect(self._si)

    @contextlib.contextmanager
    def _view(self, types: list[str]) -> Iterator[Any]:
        view = self._content.viewManager.CreateContainerView(
            self._content.rootFolder, [getattr(vim, t) for t in types], True)
        try:
            yield view
        finally:
            with contextlib.suppress(Exception):
                view.DestroyView()

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except GeneratorExit:
            raise
        except Exception as exc:
            raise translate(exc, f"{self.endpoint.display}: {what}") from exc


def connect(endpoint: Endpoint, password: str, timeout: float = 60.0) -> Session:
    """Log in; raise :class:`HostUnreachable` or :class:`DiscoveryError` with a clear line."""
    try:
        si = SmartConnect(
            protocol=endpoint.protocol, host=endpoint.host, port=endpoint.port,
            user=endpoint.user, pwd=password,
            sslContext=tls_context(endpoint),
            disableSslCertValidation=endpoint.insecure,
            httpConnectionTimeout=timeout,
        )
    except Exception as exc:
        raise translate(exc, f"cannot log in to {endpoint.display}") from None
    return Session(si, endpoint)


def tls_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """The TLS context for ``endpoint``: verifying unless the URI says ``insecure=1``.

    Always passed explicitly: given none, pyVmomi's SmartConnect skips
    certificate verification for ``localhost``, ``127.0.0.1`` and ``::1``
    (pyVim.connect.getSslContext), so a tunnel or proxy on the loopback would
    go unverified. The default context checks the chain against the system's
    CAs (or ``$SSL_CERT_FILE``/``$SSL_CERT_DIR``) and the host name.
    Each insecure connection logs a warning; so does a plain-HTTP one to a
    host beyond the loopback (the password then crosses the network in clear).
    """
    if endpoint.protocol == "http":
        if not _loopback(endpoint.host):
            LOG.warning("%s: plain HTTP (scheme=http): the password is sent unencrypted",
                        endpoint.display)
        return None
    if endpoint.insecure:
        LOG.warning("%s: TLS certificate verification is off (insecure=1): anyone on the "
                    "path can read the session and the password", endpoint.display)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def translate(exc: BaseException, what: str) -> Exception:
    """Map a pyVmomi/transport error to os-onboard's tree (returned, for ``raise … from``).

    Messages name the endpoint and the user, never the password.
    """
    if isinstance(exc, DiscoveryError):
        return exc
    if isinstance(exc, vim.fault.InvalidLogin):
        return DiscoveryError(f"{what}: incorrect user name or password")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DiscoveryError(f"{what}: TLS certificate not trusted ({exc.verify_message}); "
                              "install its CA (system store or $SSL_CERT_FILE), or add "
                              "?insecure=1 to turn verification off")
    if isinstance(exc, ssl.SSLError):
        return HostUnreachable(f"{what}: TLS failed ({exc.reason}); a plain-HTTP simulator "
                               "needs ?scheme=http")
    if isinstance(exc, vim.fault.NotAuthenticated):
        return HostUnreachable(f"{what}: the session expired")
    if isinstance(exc, vmodl.MethodFault):
        return DiscoveryError(f"{what}: {type(exc).__name__.rsplit('.', 1)[-1]}: {exc.msg}")
    if isinstance(exc, _LINK_ERRORS):
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return HostUnreachable(f"{what}: {text or type(exc).__name__}")
    return DiscoveryError(f"{what}: {type(exc).__name__}: {exc}")


#: the paging token as the last child of ``returnval``, at the end of a reply
_TOKEN_AT_END = re.compile(
    rb"<(?:[\w.-]+:)?token>([^<&]{1,4096})</(?:[\w.-]+:)?token>\s*</(?:[\w.-]+:)?returnval>")


def _peek_token(body: bytes) -> str | None:
    """The paging token of a reply, found without parsing it (None if not found).

    vCenter and the simulator put ``<token>`` after every ``<objects>``, the
    reply's last few hundred bytes; only a hint: the parse's token decides.
    """
    match = _TOKEN_AT_END.search(body, max(0, len(body) - 8192))
    if match is None:
        return None
    return match.group(1).decode("utf-8", "replace") or None


def _post(stub: Any, collector: Any, method: str, args: list[Any]) -> bytes | None:
    """POST one SOAP call like pyVmomi's stub does; the body on HTTP 200, else None."""
    request = stub.SerializeRequest(collector, collector._GetMethodInfo(method), args)
    headers = {"Cookie": stub.cookie, "SOAPAction": stub.versionId,
               "Content-Type": "text/xml; charset=UTF-8"}
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, request, headers)
        response = conn.getresponse()
        body = response.read()
    except Exception:
        conn.close()
        stub.DropConnections()
        raise
    stub.ReturnConnection(conn)
    return body if response.status == 200 else None


@functools.cache
def _schema(wsdl_name: str) -> dict[str, FieldInfo]:
    """Field name -> (is array, kind, WSDL type) of a vim25 data type, from pyVmomi."""
    try:
        cls = VmomiSupport.GetWsdlType("urn:vim25", wsdl_name)
        props = cls._GetPropertyList()
    except Exception:
        return {}
    fields: dict[str, FieldInfo] = {}
    for prop in props:
        is_array = issubclass(prop.type, list) and hasattr(prop.type, "Item")
        item = prop.type.Item if is_array else prop.type
        if issubclass(item, bool):
            kind = "bool"
        elif issubclass(item, int):
            kind = "int"
        elif issubclass(item, float):
            kind = "float"
        elif issubclass(item, VmomiSupport.ManagedObject):
            kind = "ref"
        elif issubclass(item, VmomiSupport.DataObject):
            kind = "data"
        else:
            kind = "str"
        fields[prop.name] = (is_array, kind, getattr(item, "_wsdlName", "string"))
    return fields


def _filter_spec(view: Any, paths: Mapping[str, Sequence[str]]) -> Any:
    traverse = _PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view",
                                 skip=False)
    return _PC.FilterSpec(
        objectSet=[_PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
        propSet=[_PC.PropertySpec(type=getattr(vim, t), pathSet=list(p), all=False)
                 for t, p in paths.items()],
    )


def _plain(value: Any) -> Any:
    """References become moid strings; everything else passes through."""
    if isinstance(value, VmomiSupport.ManagedObject):
        return value._moId
    if isinstance(value, list) and value and isinstance(value[0], VmomiSupport.ManagedObject):
        return [v._moId for v in value]
    return value


def _raw_object(content: Any) -> RawObject:
    return RawObject(
        type=content.obj._wsdlName,
        moid=content.obj._moId,
        props={p.name: _plain(p.val) for p in content.propSet or ()},
        missing={m.path: type(m.fault).__name__.rsplit(".", 1)[-1]
                 for m in content.missingSet or ()},
    )


def _raw_update(update: Any) -> RawUpdate:
    return RawUpdate(
        kind=str(update.kind), type=update.obj._wsdlName, moid=update.obj._moId,
        changes=[(c.name, str(c.op), _plain(c.val)) for c in update.changeSet or ()],
    )


def reconfigure_extra_config(endpoint: Endpoint, password: str, instance_uuid: str,
                             values: Callable[[list[Any]], Mapping[str, str]]) -> tuple[str,
                                                                                        dict]:
    """The one write os-onboard makes in vCenter (see hostwrite.py for why it is safe):
    ``ReconfigVM_Task`` with only ``extraConfig`` on the VM with this instanceUuid.

    :param values: given the VM's extraConfig options, the keys to write (empty: none).
    :returns: the VM's name and what was written.
    :raises HostWriteError: no such VM, or vCenter refused the change.
    """
    session = connect(endpoint, password)
    try:
        # FindAllByUuid, as Nova's driver looks VMs up (and twins show as such)
        found = session._content.searchIndex.FindAllByUuid(
            uuid=instance_uuid, vmSearch=True, instanceUuid=True)
        if len(found) != 1:
            raise HostWriteError(f"{endpoint.display}: {len(found)} VMs with instanceUuid "
                                 f"{instance_uuid}, not one")
        vm = found[0]
        todo = dict(values(list(vm.config.extraConfig or [])))
        if todo:
            spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=k, value=v)
                                                  for k, v in sorted(todo.items())])
            try:
                WaitForTask(vm.ReconfigVM_Task(spec))
            except Exception as exc:
                raise HostWriteError(f"{endpoint.display}: ReconfigVM_Task (extraConfig "
                                     f"{', '.join(sorted(todo))}) on {vm.name}: {exc}") from None
        return vm.name, todo
    finally:
        session.close()
