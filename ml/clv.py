"""Customer lifetime value: the BG/NBD purchase model with the Gamma-Gamma spend model.

Implemented here with scipy (about 150 lines) rather than taken from a library: `lifetimes` is
unmaintained since 2020 and does not install cleanly with pandas 3, and PyMC-Marketing would
pull in PyMC and a compiler toolchain for four closed-form likelihoods. The formulas are those
of Fader, Hardie & Lee (2005), "Counting your customers the easy way", and Fader & Hardie (2013),
"The Gamma-Gamma model of monetary value"; `tests/test_clv.py` checks the fitted parameters
against the published CDNOW figures.

Time is measured in weeks. Per customer: `frequency` x = repeat purchases (purchase days after
the first), `recency` t_x = weeks from the first to the last purchase, `T` = weeks from the first
purchase to the end of the calibration period, `monetary_value` = mean spend of the repeat
purchase days (the first purchase is left out, as in the published protocol).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

WEEK = pd.Timedelta(days=7)


def rfm_summary(transactions: pd.DataFrame, calibration_end: pd.Timestamp,
                customer: str = "customer_id", date: str = "date",
                amount: str = "amount") -> pd.DataFrame:
    """Per customer frequency, recency, T and monetary_value from purchases up to
    `calibration_end` (inclusive). Purchases on the same day are one purchase."""
    frame = transactions[[customer, date, amount]].copy()
    frame[date] = pd.to_datetime(frame[date]).dt.normalize()
    frame = frame[frame[date] <= calibration_end]
    daily = frame.groupby([customer, date], as_index=False)[amount].sum()
    daily = daily.sort_values([customer, date])
    grouped = daily.groupby(customer)
    first, last = grouped[date].min(), grouped[date].max()
    n_days = grouped.size()
    repeat_spend = daily[daily.duplicated(customer, keep="first")].groupby(customer)[amount].mean()
    summary = pd.DataFrame({
        "frequency": (n_days - 1).astype(float),
        "recency": (last - first) / WEEK,
        "T": (calibration_end.normalize() - first) / WEEK,
    })
    summary["monetary_value"] = repeat_spend.reindex(summary.index).fillna(0.0)
    summary.index.name = customer
    return summary


def holdout_purchases(transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                      customer: str = "customer_id", date: str = "date") -> pd.Series:
    """Purchase days per customer in (start, end]: the actual repeat purchases of a holdout."""
    days = pd.to_datetime(transactions[date]).dt.normalize()
    inside = transactions[(days > start) & (days <= end)]
    return inside.assign(_day=days).groupby(customer)["_day"].nunique()


# ---------------------------------------------------------------- BG/NBD


@dataclass(frozen=True)
class BetaGeoParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                         T: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12))
                      - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _fit(neg_ll, n_params: int, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Minimise a negative log-likelihood over positive parameters (optimised in log space):
    L-BFGS-B, and the Nelder-Mead simplex only when the quasi-Newton step does not converge."""
    x0 = np.log(start) if start is not None else np.zeros(n_params)
    result = minimize(lambda z: neg_ll(np.exp(z)), x0, method="L-BFGS-B",
                      options={"maxiter": 5_000})
    if not result.success or not np.isfinite(result.fun):
        polished = minimize(lambda z: neg_ll(np.exp(z)),
                            result.x if np.all(np.isfinite(result.x)) else x0,
                            method="Nelder-Mead", options={"maxiter": 5_000, "xatol": 1e-8,
                                                           "fatol": 1e-8})
        if not np.isfinite(result.fun) or polished.fun < result.fun:
            result = polished
    if not np.isfinite(result.fun):
        raise ValueError("the likelihood could not be evaluated: check the input for "
                         "negative or missing frequency, recency or T")
    return np.exp(result.x), float(-result.fun)


def fit_bgnbd(summary: pd.DataFrame) -> BetaGeoParams:
    """Maximum-likelihood BG/NBD parameters from a `rfm_summary` frame."""
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    if len(x) == 0:
        raise ValueError("no customers to fit the purchase model on")
    if np.any(t_x > T) or np.any(x < 0):
        raise ValueError("recency must lie between 0 and T and frequency must be >= 0")
    params, ll = _fit(lambda p: -bgnbd_log_likelihood(p, x, t_x, T).sum(), 4,
                      np.array([0.5, max(T.mean(), 1.0), 1.0, 1.0]))
    return BetaGeoParams(*map(float, params), log_likelihood=ll)


def probability_alive(params: BetaGeoParams, x, t_x, T) -> np.ndarray:
    """P(the customer has not churned | history)."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, params.a / (params.b + x - 1)
                        * ((params.alpha + T) / (params.alpha + t_x)) ** (params.r + x), 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(params: BetaGeoParams, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in the next t weeks | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator * probability_alive(params, x, t_x, T)


# ---------------------------------------------------------------- Gamma-Gamma


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float
    log_likelihood: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Each repeat buyer's log-likelihood of its mean spend m over x purchases."""
    p, q, gamma = params
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(gamma)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + gamma))


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaParams:
    """Gamma-Gamma parameters fitted on the repeat buyers (frequency > 0, positive spend)."""
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeat) < 10:
        raise ValueError(f"only {len(repeat)} repeat buyers: too few to fit the spend model")
    x, m = repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)
    params, ll = _fit(lambda p: -gamma_gamma_log_likelihood(p, x, m).sum(), 3,
                      np.array([1.0, 1.0, max(float(m.mean()), 1.0)]))
    return GammaGammaParams(*map(float, params), log_likelihood=ll)


def expected_spend(params: GammaGammaParams, x, m, population_mean: bool = True) -> np.ndarray:
    """E[mean spend per purchase | x, m]; customers without repeat purchases get the
    population mean p*gamma/(q-1)."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    conditional = params.p * (params.gamma + x * m) / (params.p * x + params.q - 1)
    prior = params.p * params.gamma / (params.q - 1)
    return np.where((x > 0) & (m > 0), conditional, prior if population_mean else np.nan)


# ---------------------------------------------------------------- the model as one object


@dataclass(frozen=True)
class LifetimeValueModel:
    purchases: BetaGeoParams
    spend: GammaGammaParams

    def score(self, summary: pd.DataFrame, horizon_weeks: float) -> pd.DataFrame:
        """Per customer: P(alive), expected purchases and value over the horizon."""
        x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        purchases = expected_purchases(self.purchases, horizon_weeks, x, t_x, T)
        spend = expected_spend(self.spend, x, summary["monetary_value"].to_numpy(float))
        return pd.DataFrame({
            "probability_alive": probability_alive(self.purchases, x, t_x, T),
            "expected_purchases": purchases,
            "expected_spend_per_purchase": spend,
            "expected_value": purchases * spend,
        }, index=summary.index)

    def params(self) -> dict[str, float]:
        return {**{f"bgnbd_{k}": v for k, v in self.purchases.as_dict().items()},
                **{f"gamma_gamma_{k}": v for k, v in self.spend.as_dict().items()}}


def fit_lifetime_value(summary: pd.DataFrame) -> LifetimeValueModel:
    return LifetimeValueModel(fit_bgnbd(summary), fit_gamma_gamma(summary))


# ---------------------------------------------------------------- holdout evaluation

MIN_HISTORY_DAYS = 84  # a 4-week holdout after 8 weeks of calibration at the least
MIN_REPEAT_BUYERS = 20


def not_trainable_reason(transactions: pd.DataFrame, calibration_end: pd.Timestamp,
                         history_days: int) -> str | None:
    """Why the history is too short or thin to fit and evaluate the model, or None."""
    if history_days < MIN_HISTORY_DAYS:
        return (f"{history_days} days of orders; the lifetime-value model needs at least "
                f"{MIN_HISTORY_DAYS} (8 weeks to fit, 4 to check the forecast)")
    repeat = int((rfm_summary(transactions, calibration_end)["frequency"] > 0).sum())
    if repeat < MIN_REPEAT_BUYERS:
        return (f"{repeat} customers bought again before {calibration_end.date()}; the spend "
                f"model needs at least {MIN_REPEAT_BUYERS}")
    return None


@dataclass(frozen=True)
class HoldoutReport:
    """How a model fitted up to `calibration_end` forecast the purchases of the holdout."""

    metrics: dict[str, float]
    by_frequency: pd.DataFrame  # per calibration frequency: customers, mean predicted, actual


def evaluate_holdout(transactions: pd.DataFrame, calibration_end: pd.Timestamp,
                     holdout_end: pd.Timestamp) -> tuple[LifetimeValueModel, HoldoutReport]:
    """Fit on the calibration period, forecast the holdout's repeat purchases per customer, and
    compare with what happened and with the naive baseline (each customer's own past rate)."""
    summary = rfm_summary(transactions, calibration_end)
    model = fit_lifetime_value(summary)
    weeks = (holdout_end - calibration_end) / WEEK
    predicted = model.score(summary, weeks)["expected_purchases"]
    actual = holdout_purchases(transactions, calibration_end, holdout_end)
    actual = actual.reindex(summary.index).fillna(0.0)
    baseline = summary["frequency"] / summary["T"].clip(lower=1.0) * weeks
    mae, mae_baseline = (float((p - actual).abs().mean()) for p in (predicted, baseline))
    rmse, rmse_baseline = (float(np.sqrt(((p - actual) ** 2).mean()))
                           for p in (predicted, baseline))
    metrics = {
        "holdout_weeks": float(weeks),
        "n_customers": float(len(summary)),
        "n_repeat_buyers": float((summary["frequency"] > 0).sum()),
        "holdout_purchases_actual": float(actual.sum()),
        "holdout_purchases_predicted": float(predicted.sum()),
        "holdout_total_error_share": float(abs(predicted.sum() - actual.sum())
                                           / max(actual.sum(), 1.0)),
        "holdout_mae": mae,
        "holdout_mae_baseline": mae_baseline,
        # most customers buy nothing in a holdout, so the median (0) wins on absolute error;
        # the expected count the model forecasts is judged by squared error
        "holdout_rmse": rmse,
        "holdout_rmse_baseline": rmse_baseline,
        "holdout_rmse_vs_baseline": rmse / rmse_baseline if rmse_baseline > 0 else 0.0,
        "holdout_spearman": float(predicted.corr(actual, method="spearman")),
    }
    buckets = summary["frequency"].clip(upper=7).astype(int)
    by_frequency = pd.DataFrame({"frequency": buckets, "predicted": predicted,
                                 "actual": actual}).groupby("frequency").agg(
        customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean"))
    return model, HoldoutReport(metrics, by_frequency)


def empty_scores() -> pd.DataFrame:
    """`ml.customer_clv` with no rows, for a store that has no lifetime-value model yet."""
    return pd.DataFrame({
        "customer_id": pd.Series(dtype="string"), "as_of_date": pd.Series(dtype="datetime64[s]"),
        **{c: pd.Series(dtype="int64") for c in ("n_repeat_purchases",)},
        **{c: pd.Series(dtype="float64") for c in (
            "recency_weeks", "tenure_weeks", "avg_repeat_spend", "probability_alive",
            "expected_purchases_90d", "expected_spend_per_purchase", "expected_value_90d")},
        "model_name": pd.Series(dtype="string"), "model_version": pd.Series(dtype="string"),
        "scored_at": pd.Series(dtype="datetime64[us]"),
    })
