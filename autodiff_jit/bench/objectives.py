"""The built-in benchmark objectives.

Each `Objective` has a name, a list of `Size`s, a factory for its plain-numpy function (the one
autodiff_jit differentiates and the numpy forward baseline), an argument maker and the indices
of the arguments differentiated. Peer implementations (JAX, PyTorch, HIPS autograd), each
written natively for its library, live in `peers.py` under the same objective name.

All functions return a scalar float64; all arguments are float64 arrays (labels included, as
one-hot or +/-1 floats), so every mode and peer sees identical inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Size:
    """One problem size of an objective. `tags` say which selections include it:
    "quick" (--quick / --size quick) and "default" (a plain `autodiff-jit bench`)."""
    label: str
    params: dict
    tags: tuple = ("default",)


@dataclass
class Objective:
    name: str
    description: str
    make_fn: Callable[[dict], Callable]        # params -> numpy function f(*args) -> scalar
    make_args: Callable[[dict, np.random.Generator], tuple]
    argnums: tuple
    sizes: list = field(default_factory=list)

    def size(self, label: str) -> Size:
        for s in self.sizes:
            if s.label == label:
                return s
        raise KeyError(f"{self.name} has no size {label!r}; sizes: "
                       f"{', '.join(s.label for s in self.sizes)}")


# ---------------------------------------------------------------------------------------------
# 3-scalar polynomial

def polynomial(x, y, z):
    return x * x * y + 3.0 * y * z ** 3 - 2.0 * x * z + x ** 4 / (1.0 + y * y)


def _polynomial_args(p, rng):
    return (1.5, -0.5, 2.0)


# ---------------------------------------------------------------------------------------------
# Rosenbrock

def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _rosenbrock_args(p, rng):
    return (rng.uniform(-1.0, 1.5, size=p["n"]),)


# ---------------------------------------------------------------------------------------------
# MSE of a linear model

def mse_linear(W, b, X, Y):
    return np.mean((X @ W + b - Y) ** 2)


def _mse_args(p, rng):
    n, i, o = p["n"], p["d_in"], p["d_out"]
    X = rng.standard_normal((n, i))
    W_true = rng.standard_normal((i, o))
    Y = X @ W_true + 0.1 * rng.standard_normal((n, o))
    return (0.1 * rng.standard_normal((i, o)), np.zeros(o), X, Y)


# ---------------------------------------------------------------------------------------------
# logistic regression (labels +/-1): mean log(1 + exp(-y (Xw + b))) + l2

def logistic(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, -y * z)) + 1e-3 * np.sum(w * w)


def _logistic_args(p, rng):
    n, d = p["n"], p["d"]
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return (0.01 * rng.standard_normal(d), np.array(0.0), X, y)


# ---------------------------------------------------------------------------------------------
# 2-layer MLP (tanh), softmax cross-entropy or MSE

def mlp_xent(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return -np.mean(np.sum(Y * (logits - lse), axis=1))


def mlp_mse(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    return np.mean((h @ W2 + b2 - Y) ** 2)


def _mlp_fn(p):
    return mlp_mse if p.get("loss") == "mse" else mlp_xent


def _mlp_args(p, rng):
    n, i, h, o = p["batch"], p["d_in"], p["hidden"], p["d_out"]
    X = rng.standard_normal((n, i))
    Y = np.eye(o)[rng.integers(0, o, size=n)]
    return (rng.standard_normal((i, h)) / np.sqrt(i), np.zeros(h),
            rng.standard_normal((h, o)) / np.sqrt(h), np.zeros(o), X, Y)


# ---------------------------------------------------------------------------------------------
# GMM log-likelihood, ADBench formulation
#
# alphas (k,), means (k, d), icf (k, d + d(d-1)/2): the inverse covariance factor of each
# component, its first d entries the log of the diagonal of L, the rest the strictly lower
# triangle column by column (ADBench's order). The objective is ADBench's gmm_objective:
# sum_i logsumexp_k(alpha_k + sum(log diag L_k) - |L_k (x_i - mu_k)|^2 / 2) - n logsumexp(alpha)
# + const, plus the Wishart prior when wishart=True.

def _tril_index(d):
    """Index into [0, icf_lower...] for every entry of a d x d matrix (0 = the zero pad),
    in ADBench's column-major order of the strictly lower triangle."""
    idx = np.zeros((d, d), dtype=np.int64)
    pos = 1
    for j in range(d):
        for i in range(j + 1, d):
            idx[i, j] = pos
            pos += 1
    return idx.reshape(-1)


def _log_gamma_distrib(a, p):
    return 0.25 * p * (p - 1) * math.log(math.pi) + sum(math.lgamma(a + 0.5 * (1 - j))
                                                        for j in range(1, p + 1))


def make_gmm(d, k, wishart=True, gamma=1.0, m=0):
    idx = _tril_index(d)
    n_lower = d * (d - 1) // 2

    def gmm(alphas, means, icf, x):
        n = x.shape[0]
        log_diag = icf[:, :d]
        Qdiags = np.exp(log_diag)                                   # (k, d)
        sum_qs = np.sum(log_diag, axis=1)                           # (k,)
        lower = icf[:, d:]
        padded = np.concatenate([np.zeros((k, 1)), lower], axis=1)  # (k, 1 + n_lower)
        Ls = padded[:, idx].reshape(k, d, d)                        # strictly lower part
        xc = x[:, None, :] - means[None, :, :]                      # (n, k, d)
        Lx = Qdiags[None, :, :] * xc + np.einsum("kij,nkj->nki", Ls, xc)
        inner = alphas[None, :] + sum_qs[None, :] - 0.5 * np.sum(Lx * Lx, axis=2)  # (n, k)
        mx = np.max(inner, axis=1, keepdims=True)
        lse = np.log(np.sum(np.exp(inner - mx), axis=1)) + mx[:, 0]
        ma = np.max(alphas)
        lse_alphas = np.log(np.sum(np.exp(alphas - ma))) + ma
        const = -n * d * 0.5 * math.log(2 * math.pi)
        out = const + np.sum(lse) - n * lse_alphas
        if wishart:
            nn = d + m + 1
            prior = np.sum(0.5 * gamma * gamma * (np.sum(Qdiags * Qdiags, axis=1)
                                                  + np.sum(lower * lower, axis=1))
                           - m * sum_qs)
            C = nn * d * (math.log(gamma) - 0.5 * math.log(2)) - _log_gamma_distrib(0.5 * nn, d)
            out = out + prior - k * C
        return out

    gmm.__name__ = "gmm"
    gmm.n_lower = n_lower
    return gmm


def _gmm_fn(p):
    return make_gmm(p["d"], p["k"], p.get("wishart", True))


def _gmm_args(p, rng):
    d, k, n = p["d"], p["k"], p["n"]
    return (rng.standard_normal(k), rng.standard_normal((k, d)),
            0.1 * rng.standard_normal((k, d + d * (d - 1) // 2)), rng.standard_normal((n, d)))


# ---------------------------------------------------------------------------------------------
# linear algebra: a Gaussian-process negative log marginal likelihood (Cholesky, triangular
# solves, log det) and least squares through solve

def gp_nll(log_params, X, y):
    """RBF-kernel GP: 1/2 y^T K^{-1} y + 1/2 log det K + n/2 log 2 pi, by a Cholesky factor."""
    from ..numpy.linalg import solve_triangular
    n = y.shape[0]
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    K = np.exp(2 * log_params[1]) * np.exp(-0.5 * d2 / np.exp(2 * log_params[0])) + \
        (np.exp(2 * log_params[2]) + 1e-8) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = solve_triangular(L, solve_triangular(L, y, lower=True), trans=1, lower=True)
    return 0.5 * y @ alpha + np.sum(np.log(np.linalg.diagonal(L))) + 0.5 * n * math.log(2 * math.pi)


def _gp_args(p, rng):
    X = rng.uniform(-3, 3, (p["n"], 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(p["n"])
    return np.array([0.0, 0.0, -1.0]), X, y


def lstsq_solve(A, b, t):
    return 0.5 * np.sum((np.linalg.solve(A, b) - t) ** 2)


def _lstsq_args(p, rng):
    n = p["n"]
    return rng.standard_normal((n, n)) + math.sqrt(n) * np.eye(n), rng.standard_normal(n), \
        rng.standard_normal(n)


# ---------------------------------------------------------------------------------------------
# bundle adjustment, ADBench formulation
#
# cams (c, 11): Rodrigues rotation (3), centre (3), focal length (1), principal point (2),
# radial distortion (2); points (p, 3); weights (o,); feats (o, 2): the observed image points.
# Observation i sees point `pt[i]` from camera `cam[i]` (fixed index arrays, baked into the
# function). The objective is the sum of squares of ADBench's residuals: the weighted
# reprojection error w_i (project(cam, X) - feat_i) and the weight error 1 - w_i^2. Rotations
# are nonzero (ADBench's theta = 0 branch is not taken).

def ba_observations(p):
    """The (camera, point) index of each observation: every point seen, cameras at random
    (a fixed seed, so the function and every peer see the same problem)."""
    rng = np.random.default_rng(12345)
    pt = np.arange(p["n_obs"]) % p["n_pts"]
    cam = rng.integers(0, p["n_cams"], size=p["n_obs"])
    return cam, pt


def _cross_rows(a, b):
    """Row-wise a x b of (o, 3) arrays, by components (as ADBench writes it)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                     a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def make_ba(cam, pt):
    def bundle_adjustment(cams, X, w, feats):
        c = cams[cam]                                   # (o, 11): each observation's camera
        rot = c[:, 0:3]
        Xo = X[pt] - c[:, 3:6]
        theta = np.sqrt(np.sum(rot * rot, axis=1))
        costheta, sintheta = np.cos(theta), np.sin(theta)
        axis = rot / theta[:, None]
        tmp = np.sum(axis * Xo, axis=1) * (1.0 - costheta)
        Xcam = Xo * costheta[:, None] + _cross_rows(axis, Xo) * sintheta[:, None] + \
            axis * tmp[:, None]
        proj = Xcam[:, 0:2] / Xcam[:, 2:3]
        rsq = np.sum(proj * proj, axis=1)
        distort = 1.0 + c[:, 9] * rsq + c[:, 10] * rsq * rsq
        pred = proj * (distort * c[:, 6])[:, None] + c[:, 7:9]
        err = w[:, None] * (pred - feats)
        werr = 1.0 - w * w
        return np.sum(err * err) + np.sum(werr * werr)

    bundle_adjustment.__name__ = "bundle_adjustment"
    return bundle_adjustment


def _ba_fn(p):
    return make_ba(*ba_observations(p))


def _ba_args(p, rng):
    c, n_pts, o = p["n_cams"], p["n_pts"], p["n_obs"]
    cams = np.concatenate([0.1 * rng.standard_normal((c, 3)) + 0.05,   # rotation, nonzero
                           0.1 * rng.standard_normal((c, 3)),          # centre
                           1.0 + 0.1 * rng.random((c, 1)),             # focal length
                           0.01 * rng.standard_normal((c, 2)),         # principal point
                           0.01 * rng.standard_normal((c, 2))], axis=1)  # radial distortion
    X = np.concatenate([rng.standard_normal((n_pts, 2)), rng.uniform(4.0, 8.0, (n_pts, 1))],
                       axis=1)                                         # in front of the cameras
    w = rng.uniform(0.5, 1.5, o)
    feats = 0.3 * rng.standard_normal((o, 2))
    return cams, X, w, feats


# ---------------------------------------------------------------------------------------------

OBJECTIVES: dict[str, Objective] = {}


def _register(obj: Objective):
    OBJECTIVES[obj.name] = obj
    return obj


_register(Objective(
    "polynomial", "x^2 y + 3 y z^3 - 2 x z + x^4 / (1 + y^2) on three scalars",
    lambda p: polynomial, _polynomial_args, (0, 1, 2),
    [Size("3 scalars", {}, ("quick", "default"))]))

_register(Objective(
    "rosenbrock", "sum 100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2",
    lambda p: rosenbrock, _rosenbrock_args, (0,),
    [Size("n=10", {"n": 10}, ("quick", "default")),
     Size("n=1e3", {"n": 1000}, ("default",)),
     Size("n=1e6", {"n": 1_000_000}, ("default",))]))

_register(Objective(
    "mse_linear", "mean((X W + b - Y)^2), X: n x 3, W: 3 x 2",
    lambda p: mse_linear, _mse_args, (0, 1),
    [Size("n=1e3", {"n": 1000, "d_in": 3, "d_out": 2}, ("quick",)),
     Size("n=1e5", {"n": 100_000, "d_in": 3, "d_out": 2}, ("default",))]))

_register(Objective(
    "logistic", "mean log(1 + exp(-y (X w + b))) + 1e-3 |w|^2",
    lambda p: logistic, _logistic_args, (0, 1),
    [Size("n=100,d=10", {"n": 100, "d": 10}, ("quick",)),
     Size("n=1e4,d=100", {"n": 10_000, "d": 100}, ("default",))]))

_register(Objective(
    "mlp", "2-layer tanh MLP, softmax cross-entropy (loss=mse: squared error)",
    _mlp_fn, _mlp_args, (0, 1, 2, 3),
    [Size("b=16,64-32-10", {"batch": 16, "d_in": 64, "hidden": 32, "d_out": 10}, ("quick",)),
     Size("b=256,784-128-10", {"batch": 256, "d_in": 784, "hidden": 128, "d_out": 10},
          ("default",)),
     Size("b=256,784-128-10,mse", {"batch": 256, "d_in": 784, "hidden": 128, "d_out": 10,
                                   "loss": "mse"}, ())]))

_register(Objective(
    "gmm", "GMM log-likelihood (ADBench), with the Wishart prior",
    _gmm_fn, _gmm_args, (0, 1, 2),
    [Size("d=2,k=3,n=50", {"d": 2, "k": 3, "n": 50}, ("quick",)),
     Size("d=10,k=25,n=1e4", {"d": 10, "k": 25, "n": 10_000}, ("default",)),
     Size("d=10,k=25,n=1e4,no-prior", {"d": 10, "k": 25, "n": 10_000, "wishart": False}, ())]))


_register(Objective(
    "gp_nll", "GP negative log marginal likelihood: Cholesky, triangular solves, log det",
    lambda p: gp_nll, _gp_args, (0,),
    [Size("n=50", {"n": 50}, ("quick",)), Size("n=500", {"n": 500}, ("default",))]))

_register(Objective(
    "lstsq_solve", "0.5 |A^{-1} b - t|^2 through np.linalg.solve, gradient w.r.t. A",
    lambda p: lstsq_solve, _lstsq_args, (0,),
    [Size("n=20", {"n": 20}, ("quick",)), Size("n=200", {"n": 200}, ("default",))]))


_register(Objective(
    "bundle_adjustment", "ADBench bundle adjustment: sum of squared reprojection and weight "
    "errors, gradient w.r.t. cameras, points and weights",
    _ba_fn, _ba_args, (0, 1, 2),
    [Size("c=5,p=20,o=80", {"n_cams": 5, "n_pts": 20, "n_obs": 80}, ("quick",)),
     Size("c=50,p=2000,o=8000", {"n_cams": 50, "n_pts": 2000, "n_obs": 8000}, ("default",))]))


def select(cases=None, size="default"):
    """The (objective, size) pairs for `--cases a,b` and `--size quick|default|all|LABEL`."""
    names = list(OBJECTIVES) if not cases else list(cases)
    unknown = [c for c in names if c not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(OBJECTIVES)}")
    out = []
    for name in names:
        obj = OBJECTIVES[name]
        if size == "all":
            chosen = list(obj.sizes)
        elif size in ("quick", "default"):
            chosen = [s for s in obj.sizes if size in s.tags]
        else:
            chosen = [s for s in obj.sizes if s.label == size]
            if not chosen and len(names) == 1:
                obj.size(size)  # raises with the list of sizes
        out.extend((obj, s) for s in chosen)
    if not out:
        raise ValueError(f"no benchmark case matches cases={names} size={size!r}")
    return out
