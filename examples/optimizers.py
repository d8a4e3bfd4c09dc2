"""Gradient descent vs momentum vs Adam on the Rosenbrock function and an elongated valley,
with each optimizer's path drawn over the loss-surface contours.

Gradients come from `ad.grad` (compiled once per function). The steps use
autodiff_jit.optim's functional API (`opt.update(params, grads)`, PyTorch's update formulas)
when available, else the same formulas written inline.

Run:  python examples/optimizers.py             (figure: examples/out/optimizers.png)
"""
import os

import numpy as np

import autodiff_jit as ad

QUICK = os.environ.get("AUTODIFF_JIT_QUICK") == "1"
OUT = os.environ.get("AUTODIFF_JIT_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "out"))


def rosenbrock(p):
    x, y = p[0], p[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


C, S = np.cos(np.pi / 6), np.sin(np.pi / 6)


def valley(p):
    """A quadratic bowl 50x steeper across its axis than along it, rotated by 30 degrees."""
    a = C * p[0] + S * p[1]
    b = -S * p[0] + C * p[1]
    return 0.5 * (a * a + 50.0 * b * b)


# --- optimizers: autodiff_jit.optim when present, else the same update formulas inline -------

class _SGD:
    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.buf = lr, momentum, None

    def update(self, p, g):
        if self.momentum:
            self.buf = g.copy() if self.buf is None else self.momentum * self.buf + g
            g = self.buf
        return p - self.lr * g


class _Adam:
    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t, self.m, self.v = lr, b1, b2, eps, 0, 0.0, 0.0

    def update(self, p, g):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        mh, vh = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        return p - self.lr * mh / (np.sqrt(vh) + self.eps)


def optimizers(lr_gd, lr_mom, lr_adam):
    try:
        from autodiff_jit import optim
        return {"gradient descent": optim.SGD(lr=lr_gd),
                "momentum 0.9": optim.SGD(lr=lr_mom, momentum=0.9),
                "Adam": optim.Adam(lr=lr_adam)}
    except (ImportError, AttributeError):
        return {"gradient descent": _SGD(lr_gd), "momentum 0.9": _SGD(lr_mom, 0.9),
                "Adam": _Adam(lr_adam)}


def run(f, start, opts, steps):
    grad = ad.grad(f)
    paths = {}
    for name, opt in opts.items():
        p = np.array(start, dtype=float)
        path = [p.copy()]
        for _ in range(steps):
            p = opt.update(p, grad(p))
            path.append(np.array(p, dtype=float))
        paths[name] = np.array(path)
        print(f"  {name:<17} after {steps} steps: ({p[0]: .4f}, {p[1]: .4f})  "
              f"f = {f(p):.3g}")
    return paths


def main():
    problems = [
        ("Rosenbrock  (1 - x)^2 + 100 (y - x^2)^2", rosenbrock, (-1.5, 2.0),
         optimizers(1e-3, 1e-4, 0.05), 300 if QUICK else 3000, (-2.0, 2.0), (-1.0, 3.0),
         (1.0, 1.0), True),
        ("elongated valley (condition number 50)", valley, (-4.0, -2.0),
         optimizers(0.038, 0.004, 0.05), 60 if QUICK else 300, (-5.0, 1.5), (-3.0, 1.5),
         (0.0, 0.0), False),
    ]
    results = []
    for title, f, start, opts, steps, xr, yr, opt_pt, logc in problems:
        print(title)
        results.append((title, f, run(f, start, opts, steps), xr, yr, opt_pt, logc, steps))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no figure)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    style = {"gradient descent": dict(color="tab:red", lw=2.5, ls="-", zorder=2),
             "momentum 0.9": dict(color="tab:blue", lw=1.5, ls="--", zorder=3),
             "Adam": dict(color="tab:green", lw=1.0, ls="-", zorder=4)}
    for ax, (title, f, paths, xr, yr, opt_pt, logc, steps) in zip(axes, results):
        xx, yy = np.meshgrid(np.linspace(*xr, 300), np.linspace(*yr, 300))
        zz = f(np.stack([xx, yy]))
        levels = np.logspace(-1, 3.5, 20) if logc else np.linspace(0, np.sqrt(zz.max()), 30)[1:] ** 2
        ax.contour(xx, yy, zz, levels=levels, colors="0.6", linewidths=0.7,
                   norm=matplotlib.colors.LogNorm() if logc else None)
        for name, path in paths.items():
            ax.plot(path[:, 0], path[:, 1], marker=".", ms=3, markevery=max(steps // 60, 1),
                    label=f"{name} ({steps} steps)", **style[name])
        ax.plot(*paths["Adam"][0], "ko", ms=6, label="start")
        ax.plot(*opt_pt, "*", color="gold", mec="k", ms=14, label="minimum")
        ax.set_xlim(*xr)
        ax.set_ylim(*yr)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper right" if logc else "lower right")
    fig.suptitle("Optimizer paths over the loss contours (gradients from autodiff_jit)")
    fig.tight_layout()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "optimizers.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
