"""Fidelity of the fake kubelet (tests/fakes/kubelet_server.py): its PodList
is read by the real Kubernetes Python client into its core/v1 models, and
its authentication and authorization answer as the kubelet's filters do.
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "fakes"))
from kubelet_fixture import KubeletFake, pod  # noqa: E402
from conftest import need  # noqa: E402

CID = "a" * 64
CID2 = "b" * 64
UID = "0f5d4a3e-1c2b-4d6e-8f90-123456789abc"


def kube_client(kl, token):
    try:
        import kubernetes.client as kc
    except ImportError:
        need(False, "python3-kubernetes is not installed")
    conf = kc.Configuration()
    conf.host = kl.addr
    conf.ssl_ca_cert = kl.ca
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    return kc, kc.ApiClient(conf)


def get(kl, path, token=None, method="GET"):
    ctx = ssl.create_default_context(cafile=kl.ca)
    req = urllib.request.Request(kl.addr + path, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_podlist_reads_into_the_real_models(kubelet):
    kubelet.set_pods([pod("payments", "api-7d9", UID, "payments-api",
                          [("api", "registry.example/pay:1.2",
                            "containerd://" + CID)],
                          labels={"app": "pay", "tier": "backend"},
                          init=[("migrate", "registry.example/mig:1",
                                 "containerd://" + CID2)])])
    kc, api = kube_client(kubelet, kubelet.token)
    pods = api.call_api("/pods", "GET", response_type="V1PodList",
                        auth_settings=["BearerToken"], _return_http_data_only=True)
    assert isinstance(pods, kc.V1PodList)
    assert pods.kind == "PodList" and pods.api_version == "v1"
    (p,) = pods.items
    assert p.metadata.namespace == "payments"
    assert p.metadata.name == "api-7d9"
    assert p.metadata.uid == UID
    assert p.metadata.labels == {"app": "pay", "tier": "backend"}
    assert p.spec.service_account_name == "payments-api"
    (cs,) = p.status.container_statuses
    assert (cs.name, cs.image, cs.container_id, cs.restart_count) == \
        ("api", "registry.example/pay:1.2", "containerd://" + CID, 0)
    (ics,) = p.status.init_container_statuses
    assert ics.container_id == "containerd://" + CID2
    # The client's deserializer keeps unknown keys out: every key we sent
    # must be one of the model's, or it would be silently lost.
    raw = json.loads(get(kubelet, "/pods", kubelet.token)[1])
    for key in raw["items"][0]["status"]["containerStatuses"][0]:
        assert key in kc.V1ContainerStatus.attribute_map.values(), key
    for key in raw["items"][0]["spec"]:
        assert key in kc.V1PodSpec.attribute_map.values(), key
    for key in raw["items"][0]["metadata"]:
        assert key in kc.V1ObjectMeta.attribute_map.values(), key


def test_ephemeral_container_statuses_are_the_model_s(kubelet):
    kubelet.set_pods([pod("dbg", "p", UID, "default",
                          [("app", "busybox:1", "cri-o://" + CID)],
                          ephemeral=[("debugger-x", "busybox:1",
                                      "cri-o://" + CID2)])])
    kc, api = kube_client(kubelet, kubelet.token)
    pods = api.call_api("/pods", "GET", response_type="V1PodList",
                        auth_settings=["BearerToken"], _return_http_data_only=True)
    (ecs,) = pods.items[0].status.ephemeral_container_statuses
    assert ecs.container_id == "cri-o://" + CID2
    assert pods.items[0].spec.ephemeral_containers[0].target_container_name \
        == "app"


def test_no_token_or_a_wrong_one_is_401(kubelet):
    assert get(kubelet, "/pods") == (401, "Unauthorized\n")
    assert get(kubelet, "/pods", "not-a-token") == (401, "Unauthorized\n")
    kc, api = kube_client(kubelet, "wrong")
    with pytest.raises(kc.ApiException) as e:
        api.call_api("/pods", "GET", response_type="V1PodList",
                     auth_settings=["BearerToken"])
    assert e.value.status == 401
    assert kubelet.stats()["unauthorized"] == 3
    assert kubelet.stats()["pods_requests"] == 0


def test_a_token_without_nodes_proxy_is_403(kubelet):
    code, body = get(kubelet, "/pods", kubelet.forbidden_token)
    assert code == 403
    assert body == ("Forbidden (user=system:serviceaccount:default:default, "
                    "verb=get, resource=nodes, subresource(s)=[pods proxy])\n")
    # The allowed token may read /pods but not /stats (another subresource).
    assert get(kubelet, "/stats/summary", kubelet.token)[0] == 403
    assert get(kubelet, "/pods", kubelet.token)[0] == 200
    assert get(kubelet, "/nothing", kubelet.token)[0] == 404
    # The verb comes from the method: a DELETE asks for "delete".
    assert get(kubelet, "/pods", kubelet.token, method="DELETE")[0] == 403


def test_the_authorizer_s_subresources():
    from kubelet_server import subresources
    # pkg/kubelet/server/auth.go, and KEP-2862's map when fine-grained.
    assert subresources("/pods", False) == ["proxy"]
    assert subresources("/pods", True) == ["pods", "proxy"]
    assert subresources("/runningPods/", True) == ["pods", "proxy"]
    assert subresources("/stats/summary", True) == ["stats"]
    assert subresources("/stats/summary", False) == ["stats"]
    assert subresources("/logs/x", False) == ["log"]
    assert subresources("/checkpoint/a/b/c", True) == ["checkpoint"]
    assert subresources("/checkpoint/a/b/c", False) == ["proxy"]
    assert subresources("/exec/a/b/c", True) == ["proxy"]
    assert subresources("/podsx", True) == ["proxy"]


def test_a_nodes_pods_grant_is_enough_when_fine_grained(kubelet_pki,
                                                        tmp_path):
    # A token allowed nodes/pods only: /pods yes, anything proxied no;
    # and without fine-grained authorization, not even /pods.
    k = KubeletFake.start(tmp_path / "kl", kubelet_pki, other_grants=["pods"])
    try:
        assert get(k, "/pods", k.forbidden_token)[0] == 200
        assert get(k, "/exec/ns/p/c", k.forbidden_token)[0] == 403
    finally:
        k.stop()
    k = KubeletFake.start(tmp_path / "old", kubelet_pki, other_grants=["pods"],
                          fine_grained=False)
    try:
        assert get(k, "/pods", k.forbidden_token)[0] == 403
    finally:
        k.stop()


def test_tls_needs_its_ca(kubelet):
    ctx = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(kubelet.addr + "/pods", context=ctx, timeout=10)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)


def test_pods_follow_the_file_and_are_counted(kubelet):
    assert json.loads(get(kubelet, "/pods", kubelet.token)[1])["items"] == []
    kubelet.set_pods([pod("a", "b", UID, "sa", [("c", "i:1", "containerd://"
                                                + CID)])])
    items = json.loads(get(kubelet, "/pods", kubelet.token)[1])["items"]
    assert [i["metadata"]["uid"] for i in items] == [UID]
    assert kubelet.stats()["pods_requests"] == 2
