"""Peer implementations of the built-in objectives, each written for its own library:
JAX (`jax.jit(jax.grad(f))`, float64), PyTorch eager (`torch.autograd.grad`, float64) and
HIPS autograd (`autograd.grad`). Libraries are imported lazily, only when a peer is used; a
missing library makes that peer "skipped", never an error.

`prepare(library, objective, params, args)` returns `(call, to_numpy)`: `call()` runs one
gradient evaluation on the library's own arrays (converted once, outside the timed loop) and
`to_numpy(result)` turns its result into a list of numpy arrays, one per differentiated
argument, for the agreement check.
"""
from __future__ import annotations

import importlib
import math

import numpy as np

LIBRARIES = ("jax", "torch", "autograd")


def available(library: str) -> tuple[bool, str]:
    """(True, version) when `library` imports, else (False, why)."""
    if library not in LIBRARIES:
        return False, f"unknown peer {library!r} (known: {', '.join(LIBRARIES)})"
    try:
        mod = importlib.import_module(library)
    except Exception as exc:  # ImportError, or a broken install
        return False, "not installed" if isinstance(exc, ImportError) else f"import failed: {exc}"
    return True, str(getattr(mod, "__version__", "?"))


# ---------------------------------------------------------------------------------------------
# JAX and HIPS autograd: numpy-style code on `xp` (jax.numpy / autograd.numpy), with the
# library's own logsumexp.

def _xp_objectives(xp, logsumexp, solve_triangular=None):
    def polynomial(x, y, z):
        return x * x * y + 3.0 * y * z ** 3 - 2.0 * x * z + x ** 4 / (1.0 + y * y)

    def rosenbrock(x):
        return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def mse_linear(W, b, X, Y):
        return xp.mean((xp.dot(X, W) + b - Y) ** 2)

    def logistic(w, b, X, y):
        z = xp.dot(X, w) + b
        return xp.mean(xp.logaddexp(0.0, -y * z)) + 1e-3 * xp.sum(w * w)

    def mlp(params):
        def xent(W1, b1, W2, b2, X, Y):
            logits = xp.dot(xp.tanh(xp.dot(X, W1) + b1), W2) + b2
            logp = logits - logsumexp(logits, axis=1, keepdims=True)
            return -xp.mean(xp.sum(Y * logp, axis=1))

        def mse(W1, b1, W2, b2, X, Y):
            return xp.mean((xp.dot(xp.tanh(xp.dot(X, W1) + b1), W2) + b2 - Y) ** 2)
        return mse if params.get("loss") == "mse" else xent

    def gmm(params):
        from .objectives import _log_gamma_distrib, _tril_index
        d, k, wishart = params["d"], params["k"], params.get("wishart", True)
        idx = _tril_index(d)
        gamma, m = 1.0, 0

        def f(alphas, means, icf, x):
            n = x.shape[0]
            sum_qs = xp.sum(icf[:, :d], axis=1)
            Qdiags = xp.exp(icf[:, :d])
            lower = icf[:, d:]
            Ls = xp.concatenate([xp.zeros((k, 1)), lower], axis=1)[:, idx].reshape((k, d, d))
            xc = x[:, None, :] - means[None, :, :]
            Lx = Qdiags[None, :, :] * xc + xp.einsum("kij,nkj->nki", Ls, xc)
            inner = alphas[None, :] + sum_qs[None, :] - 0.5 * xp.sum(Lx ** 2, axis=2)
            out = (-n * d * 0.5 * math.log(2 * math.pi) + xp.sum(logsumexp(inner, axis=1))
                   - n * logsumexp(alphas))
            if wishart:
                nn = d + m + 1
                prior = xp.sum(0.5 * gamma ** 2 * (xp.sum(Qdiags ** 2, axis=1)
                                                   + xp.sum(lower ** 2, axis=1)) - m * sum_qs)
                C = nn * d * (math.log(gamma) - 0.5 * math.log(2)) - \
                    _log_gamma_distrib(0.5 * nn, d)
                out = out + prior - k * C
            return out
        return f

    def gp_nll(log_params, X, y):
        n = y.shape[0]
        d2 = xp.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
        K = xp.exp(2 * log_params[1]) * xp.exp(-0.5 * d2 / xp.exp(2 * log_params[0])) + \
            (xp.exp(2 * log_params[2]) + 1e-8) * xp.eye(n)
        L = xp.linalg.cholesky(K)
        alpha = solve_triangular(L, solve_triangular(L, y, lower=True), trans=1, lower=True)
        return 0.5 * xp.dot(y, alpha) + xp.sum(xp.log(xp.diag(L))) + \
            0.5 * n * math.log(2 * math.pi)

    def lstsq_solve(A, b, t):
        return 0.5 * xp.sum((xp.linalg.solve(A, b) - t) ** 2)

    def bundle_adjustment(params):
        from .objectives import ba_observations
        cam, pt = ba_observations(params)

        def cross(a, b):
            return xp.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                             a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                             a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)

        def f(cams, X, w, feats):
            c = cams[cam]
            rot = c[:, 0:3]
            Xo = X[pt] - c[:, 3:6]
            theta = xp.sqrt(xp.sum(rot * rot, axis=1))
            axis = rot / theta[:, None]
            tmp = xp.sum(axis * Xo, axis=1) * (1.0 - xp.cos(theta))
            Xcam = Xo * xp.cos(theta)[:, None] + cross(axis, Xo) * xp.sin(theta)[:, None] + \
                axis * tmp[:, None]
            proj = Xcam[:, 0:2] / Xcam[:, 2:3]
            rsq = xp.sum(proj * proj, axis=1)
            distort = 1.0 + c[:, 9] * rsq + c[:, 10] * rsq * rsq
            err = w[:, None] * (proj * (distort * c[:, 6])[:, None] + c[:, 7:9] - feats)
            return xp.sum(err * err) + xp.sum((1.0 - w * w) ** 2)
        return f

    return {"polynomial": lambda p: polynomial, "rosenbrock": lambda p: rosenbrock,
            "mse_linear": lambda p: mse_linear, "logistic": lambda p: logistic,
            "mlp": mlp, "gmm": gmm, "gp_nll": lambda p: gp_nll,
            "lstsq_solve": lambda p: lstsq_solve, "bundle_adjustment": bundle_adjustment}


def _jax_prepare(name, params, args, argnums):
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular
    from jax.scipy.special import logsumexp
    f = _xp_objectives(jnp, logsumexp, solve_triangular)[name](params)
    g = jax.jit(jax.grad(f, argnums=tuple(argnums)))
    jargs = [jnp.asarray(a, dtype=jnp.float64) for a in args]

    def call():
        return jax.block_until_ready(g(*jargs))
    return call, lambda r: [np.asarray(x) for x in r]


def _autograd_prepare(name, params, args, argnums):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.linalg import solve_triangular
    from autograd.scipy.special import logsumexp
    f = _xp_objectives(anp, logsumexp, solve_triangular)[name](params)
    argnums = tuple(argnums)
    rest = {i: a for i, a in enumerate(args) if i not in argnums}

    def packed(diff):
        full, it = [], iter(diff)
        for i in range(len(args)):
            full.append(next(it) if i in argnums else rest[i])
        return f(*full)
    g = autograd.grad(packed)
    diff = tuple(args[i] for i in argnums)

    def call():
        return g(diff)
    return call, lambda r: [np.asarray(x) for x in r]


# ---------------------------------------------------------------------------------------------
# PyTorch eager

def _torch_objectives():
    import torch

    def polynomial(p):
        def f(x, y, z):
            return x * x * y + 3.0 * y * z ** 3 - 2.0 * x * z + x ** 4 / (1.0 + y * y)
        return f

    def rosenbrock(p):
        def f(x):
            return torch.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
        return f

    def mse_linear(p):
        def f(W, b, X, Y):
            return torch.mean((X @ W + b - Y) ** 2)
        return f

    def logistic(p):
        def f(w, b, X, y):
            z = X @ w + b
            return torch.mean(torch.nn.functional.softplus(-y * z)) + 1e-3 * torch.sum(w * w)
        return f

    def mlp(p):
        def xent(W1, b1, W2, b2, X, Y):
            logits = torch.tanh(X @ W1 + b1) @ W2 + b2
            return -torch.mean(torch.sum(Y * torch.log_softmax(logits, dim=1), dim=1))

        def mse(W1, b1, W2, b2, X, Y):
            return torch.mean((torch.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2)
        return mse if p.get("loss") == "mse" else xent

    def gmm(p):
        from .objectives import _log_gamma_distrib, _tril_index
        d, k, wishart = p["d"], p["k"], p.get("wishart", True)
        idx = torch.as_tensor(_tril_index(d))
        gamma, m = 1.0, 0

        def f(alphas, means, icf, x):
            n = x.shape[0]
            sum_qs = torch.sum(icf[:, :d], dim=1)
            Qdiags = torch.exp(icf[:, :d])
            lower = icf[:, d:]
            padded = torch.cat([torch.zeros(k, 1, dtype=icf.dtype), lower], dim=1)
            Ls = padded[:, idx].reshape(k, d, d)
            xc = x[:, None, :] - means[None, :, :]
            Lx = Qdiags[None, :, :] * xc + torch.einsum("kij,nkj->nki", Ls, xc)
            inner = alphas[None, :] + sum_qs[None, :] - 0.5 * torch.sum(Lx ** 2, dim=2)
            out = (-n * d * 0.5 * math.log(2 * math.pi) + torch.sum(torch.logsumexp(inner, 1))
                   - n * torch.logsumexp(alphas, 0))
            if wishart:
                nn = d + m + 1
                prior = torch.sum(0.5 * gamma ** 2 * (torch.sum(Qdiags ** 2, dim=1)
                                                      + torch.sum(lower ** 2, dim=1))
                                  - m * sum_qs)
                C = nn * d * (math.log(gamma) - 0.5 * math.log(2)) - \
                    _log_gamma_distrib(0.5 * nn, d)
                out = out + prior - k * C
            return out
        return f

    def gp_nll(p):
        def f(log_params, X, y):
            n = y.shape[0]
            d2 = torch.sum((X[:, None, :] - X[None, :, :]) ** 2, dim=-1)
            K = torch.exp(2 * log_params[1]) * torch.exp(-0.5 * d2 / torch.exp(2 * log_params[0])) \
                + (torch.exp(2 * log_params[2]) + 1e-8) * torch.eye(n, dtype=torch.float64)
            L = torch.linalg.cholesky(K)
            z = torch.linalg.solve_triangular(L, y[:, None], upper=False)
            alpha = torch.linalg.solve_triangular(L.T, z, upper=True)[:, 0]
            return 0.5 * torch.dot(y, alpha) + torch.sum(torch.log(torch.diagonal(L))) + \
                0.5 * n * math.log(2 * math.pi)
        return f

    def lstsq_solve(p):
        def f(A, b, t):
            return 0.5 * torch.sum((torch.linalg.solve(A, b) - t) ** 2)
        return f

    def bundle_adjustment(p):
        from .objectives import ba_observations
        cam, pt = (torch.as_tensor(i) for i in ba_observations(p))

        def cross(a, b):
            return torch.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                                a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                                a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], dim=1)

        def f(cams, X, w, feats):
            c = cams[cam]
            rot = c[:, 0:3]
            Xo = X[pt] - c[:, 3:6]
            theta = torch.sqrt(torch.sum(rot * rot, dim=1))
            axis = rot / theta[:, None]
            tmp = torch.sum(axis * Xo, dim=1) * (1.0 - torch.cos(theta))
            Xcam = Xo * torch.cos(theta)[:, None] + cross(axis, Xo) * \
                torch.sin(theta)[:, None] + axis * tmp[:, None]
            proj = Xcam[:, 0:2] / Xcam[:, 2:3]
            rsq = torch.sum(proj * proj, dim=1)
            distort = 1.0 + c[:, 9] * rsq + c[:, 10] * rsq * rsq
            err = w[:, None] * (proj * (distort * c[:, 6])[:, None] + c[:, 7:9] - feats)
            return torch.sum(err * err) + torch.sum((1.0 - w * w) ** 2)
        return f

    return {"polynomial": polynomial, "rosenbrock": rosenbrock, "mse_linear": mse_linear,
            "logistic": logistic, "mlp": mlp, "gmm": gmm, "gp_nll": gp_nll,
            "lstsq_solve": lstsq_solve, "bundle_adjustment": bundle_adjustment}


def _torch_prepare(name, params, args, argnums):
    import torch
    f = _torch_objectives()[name](params)
    targs = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64,
                          requires_grad=i in argnums) for i, a in enumerate(args)]
    wrt = [targs[i] for i in argnums]

    def call():
        return torch.autograd.grad(f(*targs), wrt)
    return call, lambda r: [t.detach().numpy() for t in r]


_OBJECTIVE_NAMES = ("polynomial", "rosenbrock", "mse_linear", "logistic", "mlp", "gmm", "gp_nll",
                    "lstsq_solve", "bundle_adjustment")
_PREPARE = {"jax": _jax_prepare, "torch": _torch_prepare, "autograd": _autograd_prepare}

# library -> objective name -> prepare function (the "peer variants" of each objective)
PEERS = {lib: {name: _PREPARE[lib] for name in _OBJECTIVE_NAMES} for lib in LIBRARIES}


def prepare(library, objective, params, args, argnums):
    """(call, to_numpy) for `library`'s native gradient of a built-in objective."""
    try:
        prep = PEERS[library][objective]
    except KeyError:
        raise KeyError(f"no {library} implementation of {objective!r}") from None
    return prep(objective, params, args, argnums)
