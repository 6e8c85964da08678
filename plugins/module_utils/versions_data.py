# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Data of the versions table (versions.py builds releases from it).

Every sha256 below is an upstream-published sum. None was computed here (this machine
cannot download the artifacts). Where each one was read:

  KUBESPRAY = kubernetes-sigs/kubespray, roles/kubespray_defaults/vars/main/checksums.yml
              @ commit 005bdce7f1867958838a2d0bb4f7e67893d98f64 (tables kubeadm_checksums,
              kubelet_checksums, kubectl_checksums, crictl_checksums, cni_binary_checksums,
              containerd_archive_checksums, runc_checksums, etcd_binary_checksums).
              Kubespray copies them from the upstream publications named in each
              component's "source" URL pattern (SOURCES below): dl.k8s.io/<binary>.sha256
              for kubeadm/kubelet/kubectl, the GitHub release assets' sha256 files for
              cri-tools, CNI plugins, containerd, runc and etcd.

Component pairings per minor follow Kubespray's defaults at the same commit
(roles/kubespray_defaults/defaults/main/download.yml + vars/main/main.yml):
crictl = newest cri-tools release below the next minor, cni/containerd/runc = the newest
listed, pause = pod_infra_supported_versions, etcd binary = newest listed 3.5.x.

Image tags are the ones kubeadm pins for the minor (cmd/kubeadm/app/constants/constants.go
on the release branch: DefaultEtcdVersion/SupportedEtcdVersion, CoreDNSVersion, PauseVersion);
`kubeadm config images list --kubernetes-version vX` is the authority for a given build.
No published image digests were found in the sources consulted, so digests are None.
"""

from __future__ import annotations

KUBESPRAY = (
    "kubernetes-sigs/kubespray roles/kubespray_defaults/vars/main/checksums.yml "
    "@ 005bdce7f1867958838a2d0bb4f7e67893d98f64"
)

# Download URL and the URL of the upstream-published sum, per component.
# Placeholders: {version} (component version) and {arch} (amd64, arm64).
URLS = {
    "kubeadm": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubeadm",
    "kubelet": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubelet",
    "kubectl": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubectl",
    "crictl": (
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/v{version}/crictl-v{version}-linux-{arch}.tar.gz"
    ),
    "cni_plugins": (
        "https://github.com/containernetworking/plugins/releases/download/v{version}/cni-plugins-linux-{arch}-v{version}.tgz"
    ),
    "containerd": (
        "https://github.com/containerd/containerd/releases/download/v{version}/containerd-{version}-linux-{arch}.tar.gz"
    ),
    "runc": "https://github.com/opencontainers/runc/releases/download/v{version}/runc.{arch}",
    "etcd": "https://github.com/etcd-io/etcd/releases/download/v{version}/etcd-v{version}-linux-{arch}.tar.gz",
}
SOURCES = {
    "kubeadm": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubeadm.sha256",
    "kubelet": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubelet.sha256",
    "kubectl": "https://dl.k8s.io/release/v{version}/bin/linux/{arch}/kubectl.sha256",
    "crictl": URLS["crictl"] + ".sha256",
    "cni_plugins": URLS["cni_plugins"] + ".sha256",
    "containerd": URLS["containerd"] + ".sha256sum",
    "runc": "https://github.com/opencontainers/runc/releases/download/v{version}/runc.sha256sum",
    "etcd": "https://github.com/etcd-io/etcd/releases/download/v{version}/SHA256SUMS",
}

# kubeadm / kubelet / kubectl per Kubernetes patch release. Source: KUBESPRAY
# (kubeadm_checksums, kubelet_checksums, kubectl_checksums), published at SOURCES[...].
KUBE_BINARIES = {
    "1.35.1": {
        "kubeadm": {
            "amd64": "8a7ff344eef1bfba88f9a74b3fdc9ea4448c94f1b3cefb8c0aeeaf1f96e05053",
            "arm64": "80097a3c4ef824f4edfe131d2bd429772c4be3a460c42a44f2320164a917de32",
        },
        "kubelet": {
            "amd64": "e7343310e03ff0d424df4397bdfa4468947d6d1f0f93dac586c1e8d6e4086d5d",
            "arm64": "73475c6db8fd8a9780b1b378fa2f917875e6146166c24603c1abc6eafd4493a8",
        },
        "kubectl": {
            "amd64": "36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207",
            "arm64": "706256e21a4e9192ee62d1a007ac0bfcff2b0b26e92cc7baad487a6a5d08ff82",
        },
    },
    "1.35.0": {
        "kubeadm": {
            "amd64": "729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed",
            "arm64": "1dac7dc2c6a56548bbc6bf8a7ecf4734f2e733fb336d7293d84541ebe52d0e50",
        },
        "kubelet": {
            "amd64": "2f4ed7778681649b81244426c29c5d98df60ccabf83d561d69e61c1cbb943ddf",
            "arm64": "aa658d077348b43d238f50966a583f4244b2a7d45590c77b3b165b7d44983ab8",
        },
        "kubectl": {
            "amd64": "a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989",
            "arm64": "58f82f9fe796c375c5c4b8439850b0f3f4d401a52434052f2df46035a8789e25",
        },
    },
    "1.34.4": {
        "kubeadm": {
            "amd64": "b967f1fa0e36621c402d38bb560eb4a943954d5cf5a00e5150842f6f5da73455",
            "arm64": "d8028b7e8c8d6c9b3fc3da6bc88d4d0cfb33df1b4b026a7d6e8c35d1471c9f6e",
        },
        "kubelet": {
            "amd64": "03b8fea715a7ef82eeaf518dee34c72670c57cc7bc40dc1320c04fbf4f15172f",
            "arm64": "c78845473c434ee85a2444eeab87f8b20f524e3ab6854a078f79468f44aad8f5",
        },
        "kubectl": {
            "amd64": "d50c359d95e0841eaad08ddc27c7be37cba8fdccfba5c8e2ded65e121ff112db",
            "arm64": "5b982c0644ab1e27780246b9085a5886651b4a7ed86243acbb2bacc1bea01dda",
        },
    },
    "1.34.3": {
        "kubeadm": {
            "amd64": "f9ce265434d306e59d800b26f3049b8430ba71f815947f4bacdcdc33359417fb",
            "arm64": "697cf3aa54f1a5740b883a3b18a5d051b4032fd68ba89af626781a43ec9bccc3",
        },
        "kubelet": {
            "amd64": "0e759f40bbc717c05227ae3994b77786f58f59ffa0137a34958c6b26fa5bcbbd",
            "arm64": "765b740e3ad9c590852652a2623424ec60e2dddce2c6280d7f042f56c8c98619",
        },
        "kubectl": {
            "amd64": "ab60ca5f0fd60c1eb81b52909e67060e3ba0bd27e55a8ac147cbc2172ff14212",
            "arm64": "46913a7aa0327f6cc2e1cc2775d53c4a2af5e52f7fd8dacbfbfd098e757f19e9",
        },
    },
    "1.33.8": {
        "kubeadm": {
            "amd64": "8259af514dc3655e8abec1a69b637f31cce2ecb940a80ae4a268e5287890f009",
            "arm64": "b5248b51e66e4716261f2c926fe2f08a293795e6863099e7792b4d57dbb9109e",
        },
        "kubelet": {
            "amd64": "1caa69c5328cfa774218f75f0621a6f10a1b97e095af85015f468aeb8fdf956a",
            "arm64": "e835f15be6d8b7b27b963a46c4a054f7663c26741f17e003bfcb8271350cf882",
        },
        "kubectl": {
            "amd64": "7f9c3faab7c9f9cc3f318d49eb88efc60eb3b3a7ce9eee5feb39b1280e108a29",
            "arm64": "76e284669f1f6343bd9fe2a011757809c8c01cf51da9f85ee6ef4eb93c8393a8",
        },
    },
    "1.33.7": {
        "kubeadm": {
            "amd64": "c10813d54f58ef33bbe6675f3d39c8bd401867743ebc729afdd043265040c31d",
            "arm64": "b24eeeff288f9565e11a2527e5aed42c21386596110537adb805a5a2a7b3e9ce",
        },
        "kubelet": {
            "amd64": "2cea40c8c6929330e799f8fc73233a4b61e63f208739669865e2a23a39c3a007",
            "arm64": "3035c44e0d429946d6b4b66c593d371cf5bbbfc85df39d7e2a03c422e4fe404a",
        },
        "kubectl": {
            "amd64": "471d94e208a89be62eb776700fc8206cbef11116a8de2dc06fc0086b0015375b",
            "arm64": "fa7ee98fdb6fba92ae05b5e0cde0abd5972b2d9a4a084f7052a1fd0dce6bc1de",
        },
    },
}

# Node components, per component version. Source: KUBESPRAY (table named in each comment).
COMPONENTS = {
    # crictl_checksums
    "crictl": {
        "1.35.0": {
            "amd64": "2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177",
            "arm64": "519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118",
        },
        "1.34.0": {
            "amd64": "a8ff2a3edb37a98daf3aba7c3b284fe0aa5bff24166d896ab9ef64c8913c9f51",
            "arm64": "c31d252e203df5f4cf37f314bd3092eb79087e791631c1e607087c74b6d0423f",
        },
        "1.33.0": {
            "amd64": "8307399e714626e69d1213a4cd18c8dec3d0201ecdac009b1802115df8973f0f",
            "arm64": "e1f34918d77d5b4be85d48f5d713ca617698a371b049ea1486000a5e86ab1ff3",
        },
    },
    # cni_binary_checksums
    "cni_plugins": {
        "1.8.0": {
            "amd64": "ab3bda535f9d90766cccc90d3dddb5482003dd744d7f22bcf98186bf8eea8be6",
            "arm64": "57ce466fc3b79db1f19b8f4c63e07a1112306efa53c94fe810a2150dd9e07ddb",
        },
    },
    # containerd_archive_checksums (the glibc build, containerd-<v>-linux-<arch>.tar.gz)
    "containerd": {
        "2.2.1": {
            "amd64": "f5d8e90ecb6c1c7e33ecddf8cc268a93b9e5b54e0e850320d765511d76624f41",
            "arm64": "dac15a0d412a24be8bfe6a40cec8f51829062725169f1e72ac7d120a891ef5b6",
        },
    },
    # runc_checksums
    "runc": {
        "1.3.4": {
            "amd64": "5966ca40b6187b30e33bfc299c5f1fe72e8c1aa01cf3fefdadf391668f47f103",
            "arm64": "d6dcab36d1b6af1b72c7f0662e5fcf446a291271ba6006532b95c4144e19d428",
        },
    },
    # etcd_binary_checksums
    "etcd": {
        "3.5.27": {
            "amd64": "0aad9a9e4e0817a021e933f9806a2b2960a62f949ad5a3d6436d8886945cb1bc",
            "arm64": "1277309f540c5a0329c428f95455c9f76d24f768c8d28fd2753e891c379053fa",
        },
    },
}

# Per Kubernetes minor: component versions and the image tags kubeadm pins.
#   pause: Kubespray pod_infra_supported_versions (vars/main/main.yml) = kubeadm PauseVersion.
#   coredns / etcd image: kubeadm constants.go on release-1.<minor>
#     (https://github.com/kubernetes/kubernetes/blob/release-1.<minor>/cmd/kubeadm/app/constants/constants.go):
#     1.33 SupportedEtcdVersion[33] = 3.5.24-0 (after the 3.5.24 bump on the supported branches),
#     1.34 SupportedEtcdVersion[34] = 3.6.5-0, 1.35 DefaultEtcdVersion = 3.6.6-0;
#     CoreDNS v1.12.0 (1.33), v1.12.1 (1.34), v1.13.1 (1.35).
MINORS = {
    "1.35": {
        "components": {
            "crictl": "1.35.0",
            "cni_plugins": "1.8.0",
            "containerd": "2.2.1",
            "runc": "1.3.4",
            "etcd": "3.5.27",
        },
        "images": {"pause": "3.10.1", "coredns": "v1.13.1", "etcd": "3.6.6-0"},
    },
    "1.34": {
        "components": {
            "crictl": "1.34.0",
            "cni_plugins": "1.8.0",
            "containerd": "2.2.1",
            "runc": "1.3.4",
            "etcd": "3.5.27",
        },
        "images": {"pause": "3.10.1", "coredns": "v1.12.1", "etcd": "3.6.5-0"},
    },
    "1.33": {
        "components": {
            "crictl": "1.33.0",
            "cni_plugins": "1.8.0",
            "containerd": "2.2.1",
            "runc": "1.3.4",
            "etcd": "3.5.27",
        },
        "images": {"pause": "3.10", "coredns": "v1.12.0", "etcd": "3.5.24-0"},
    },
}
