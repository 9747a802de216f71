"""Customer lifetime value: the BG/NBD or MBG/NBD purchase model with the Gamma-Gamma spend model.

Implemented here with scipy (about 150 lines) rather than taken from a library: `lifetimes` is
unmaintained since 2020 and does not install cleanly with pandas 3, and PyMC-Marketing would
pull in PyMC and a compiler toolchain for four closed-form likelihoods. The formulas are those
of Fader, Hardie & Lee (2005), "Counting your customers the easy way", and Fader & Hardie (2013),
"The Gamma-Gamma model of monetary value"; the MBG/NBD variant is Batislam, Denizel &
Filiztekin (2007) with the erratum of Wagner & Hoppe (2008). `tests/test_clv.py` checks the fitted
parameters of both against the published CDNOW figures.

BG/NBD lets a customer drop out only after a repeat purchase, so every one-time buyer is "alive"
with probability 1; MBG/NBD also lets them drop out after their first purchase. Both are fitted
and the one with the higher likelihood is kept (same number of parameters). On the sample store
MBG/NBD wins and its P(alive) separates the hidden lapsing persona better (docs/models.md).

Parameters are fitted within [1e-4, 1e4] (log space): outside it the Beta functions lose all
precision and the optimiser reports nonsense likelihoods. Where a formula breaks down the model
says so: a -> 1 in the expected purchases (evaluated at the limit), q <= 1 in the spend model (no
finite mean: the observed mean stands in), and a dropout so rare that churn cannot be identified
(`churn_identified`).

Time is measured in weeks. Per customer: `frequency` x = repeat purchases (purchase days after
the first), `recency` t_x = weeks from the first to the last purchase, `T` = weeks from the first
purchase to the end of the calibration period, `monetary_value` = mean spend of the repeat
purchase days (the first purchase is left out, as in the published protocol).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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


def rfm_summary_sql(purchases: str, calibration_end: pd.Timestamp) -> str:
    """`rfm_summary` as DuckDB SQL over the query `purchases` (customer_id, date, amount): the
    same columns, indexed the same way once `.set_index("customer_id")` (frequency, recency and
    T exactly, monetary_value to the last bits of a mean). A daily scoring run computes it in
    the warehouse: at 1M customers the orders took 4 s to reach pandas and be summed there."""
    end = pd.Timestamp(calibration_end).normalize().date().isoformat()
    return f"""
        with days as (
            select customer_id::varchar as customer_id, date_trunc('day', date::timestamp) as day,
                   sum(amount)::double as amount
            from ({purchases})
            where date_trunc('day', date::timestamp) <= '{end}'::timestamp
            group by all),
        numbered as (
            select *, row_number() over (partition by customer_id order by day) as nth
            from days)
        select customer_id,
               (count(*) - 1)::double as frequency,
               date_diff('day', min(day), max(day)) / 7.0 as recency,
               date_diff('day', min(day), '{end}'::timestamp) / 7.0 as "T",
               coalesce(avg(amount) filter (where nth > 1), 0.0) as monetary_value
        from numbered
        group by customer_id
        order by customer_id"""


def holdout_purchases(transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                      customer: str = "customer_id", date: str = "date") -> pd.Series:
    """Purchase days per customer in (start, end]: the actual repeat purchases of a holdout."""
    days = pd.to_datetime(transactions[date]).dt.normalize()
    inside = transactions[(days > start) & (days <= end)]
    return inside.assign(_day=days).groupby(customer)["_day"].nunique()


# ---------------------------------------------------------------- BG/NBD


BGNBD, MBGNBD = "bgnbd", "mbgnbd"
PURCHASE_MODELS = {BGNBD: "BG/NBD (Fader, Hardie & Lee 2005)",
                   MBGNBD: "MBG/NBD (Batislam, Denizel & Filiztekin 2007)"}
# the log-space box every parameter is fitted in
PARAMETER_BOUNDS = (1e-4, 1e4)
# below this mean dropout probability per purchase, a/(a+b), churn cannot be told from noise:
# fewer than one purchase in 200 is a customer's last
MIN_DROPOUT_PROBABILITY = 0.005


@dataclass(frozen=True)
class BetaGeoParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    variant: str = BGNBD  # a default: versions pickled before MBG/NBD existed load as BG/NBD

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "variant"}

    @property
    def dropout_probability(self) -> float:
        """The mean probability that a purchase is the customer's last, a / (a + b)."""
        return self.a / (self.a + self.b)


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


def mbgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray,
                          T: np.ndarray) -> np.ndarray:
    """Each customer's log-likelihood under MBG/NBD (Batislam et al. 2007; Wagner & Hoppe
    2008): as BG/NBD, but a customer may also drop out right after the first purchase."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
    died = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    return a1 + np.logaddexp(alive, died)


LOG_LIKELIHOODS = {BGNBD: bgnbd_log_likelihood, MBGNBD: mbgnbd_log_likelihood}


def _fit(neg_ll, n_params: int, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Minimise a negative log-likelihood over positive parameters (optimised in log space):
    L-BFGS-B, and the Nelder-Mead simplex only when the quasi-Newton step does not converge."""
    bounds = [tuple(np.log(PARAMETER_BOUNDS))] * n_params
    x0 = np.clip(np.log(start) if start is not None else np.zeros(n_params), *bounds[0])
    with np.errstate(all="ignore"):
        result = minimize(lambda z: neg_ll(np.exp(z)), x0, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 5_000})
        if not result.success or not np.isfinite(result.fun):
            polished = minimize(lambda z: neg_ll(np.exp(z)),
                                result.x if np.all(np.isfinite(result.x)) else x0,
                                method="Nelder-Mead", bounds=bounds,
                                options={"maxiter": 5_000, "xatol": 1e-8, "fatol": 1e-8})
            if not np.isfinite(result.fun) or polished.fun < result.fun:
                result = polished
    if not np.isfinite(result.fun):
        raise ValueError("the likelihood could not be evaluated: check the input for "
                         "negative or missing frequency, recency or T")
    return np.exp(result.x), float(-result.fun)


def fit_bgnbd(summary: pd.DataFrame, variant: str = BGNBD) -> BetaGeoParams:
    """Maximum-likelihood BG/NBD (or MBG/NBD) parameters from a `rfm_summary` frame."""
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    if len(x) == 0:
        raise ValueError("no customers to fit the purchase model on")
    if np.any(t_x > T) or np.any(x < 0):
        raise ValueError("recency must lie between 0 and T and frequency must be >= 0")
    log_likelihood = LOG_LIKELIHOODS[variant]
    params, ll = _fit(lambda p: -log_likelihood(p, x, t_x, T).sum(), 4,
                      np.array([0.5, max(T.mean(), 1.0), 1.0, 1.0]))
    return BetaGeoParams(*map(float, params), log_likelihood=ll, variant=variant)


def fit_purchase_model(summary: pd.DataFrame) -> BetaGeoParams:
    """BG/NBD and MBG/NBD fitted on the same customers; the one with the higher likelihood
    (both have four parameters, so this is also the lower AIC)."""
    fits = [fit_bgnbd(summary, variant) for variant in (BGNBD, MBGNBD)]
    return max(fits, key=lambda fit: fit.log_likelihood)


def _dropout_odds(params: BetaGeoParams, x, t_x, T) -> np.ndarray:
    """P(dropped out) / P(alive) given the history; 0 for BG/NBD's one-time buyers."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = ((alpha + T) / (alpha + t_x)) ** (r + x)
        if params.variant == MBGNBD:
            return a / (b + x) * ratio
        return np.where(x > 0, a / (b + x - 1) * ratio, 0.0)


def probability_alive(params: BetaGeoParams, x, t_x, T) -> np.ndarray:
    """P(the customer has not churned | history)."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    return 1.0 / (1.0 + _dropout_odds(params, x, t_x, T))


def expected_purchases(params: BetaGeoParams, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in the next t weeks | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10; for
    MBG/NBD, Wagner & Hoppe 2008). At a = 1 the formula is 0/0; it is evaluated just beside,
    where it is continuous."""
    r, alpha, b = params.r, params.alpha, params.b
    a = params.a if abs(params.a - 1.0) > 1e-4 else 1.0 + 1e-4
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    shift = 0.0 if params.variant == MBGNBD else -1.0  # MBG/NBD counts the first purchase
    with np.errstate(all="ignore"):
        hyp = hyp2f1(r + x, b + x + 1 + shift, a + b + x + shift, t / (alpha + T + t))
        numerator = (a + b + x + shift) / (a - 1) * (
            1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        expected = numerator * probability_alive(params, x, t_x, T)
    if not np.all(np.isfinite(expected)):
        bad = int((~np.isfinite(expected)).sum())
        raise ValueError(f"expected purchases are not finite for {bad} customers at "
                         f"r={r:.4g}, alpha={alpha:.4g}, a={a:.4g}, b={b:.4g}: the purchase "
                         "model does not describe this history")
    return np.maximum(expected, 0.0)


def probability_no_purchase(params: BetaGeoParams, t: float, x, t_x, T) -> np.ndarray:
    """P(no purchase in the next t weeks | history): dropped out, or alive and the Poisson
    process (its rate updated by the history) made no purchase. No purchase means no chance to
    drop out, so the same for both variants."""
    x, t_x, T = (np.asarray(v, float) for v in (x, t_x, T))
    alive = probability_alive(params, x, t_x, T)
    quiet = ((params.alpha + T) / (params.alpha + T + t)) ** (params.r + x)
    return 1.0 - alive + alive * quiet


def churn_identified(params: BetaGeoParams) -> str | None:
    """None when the model can tell churned customers apart, else why not: with a mean dropout
    probability per purchase near 0 (a -> 0) every P(alive) is about 1, which says nothing."""
    if params.dropout_probability < MIN_DROPOUT_PROBABILITY:
        return (f"churn cannot be identified: the fitted mean dropout probability per purchase "
                f"a/(a+b) = {params.dropout_probability:.4f} is below "
                f"{MIN_DROPOUT_PROBABILITY} (customers here do not visibly stop buying), so "
                "P(alive) is left empty and the churn segments stay empty")
    return None


# ---------------------------------------------------------------- Gamma-Gamma


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float
    log_likelihood: float
    # the repeat buyers' mean spend: stands in for the population mean when q <= 1
    observed_mean: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def population_mean(self) -> float:
        """E[spend per purchase] of a customer we know nothing about: p*gamma/(q-1), which is
        infinite for q <= 1 (a few huge orders dominate); the observed mean then."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else self.observed_mean


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
    return GammaGammaParams(*map(float, params), log_likelihood=ll,
                            observed_mean=float(m.mean()))


def expected_spend(params: GammaGammaParams, x, m, population_mean: bool = True) -> np.ndarray:
    """E[mean spend per purchase | x, m]; customers without repeat purchases get the
    population mean (`GammaGammaParams.population_mean`). Where p*x + q <= 1 the conditional
    mean is not finite and the customer's own mean stands in."""
    x, m = np.asarray(x, float), np.asarray(m, float)
    denominator = params.p * x + params.q - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = np.where(denominator > 0,
                               params.p * (params.gamma + x * m) / denominator, m)
    prior = params.population_mean if population_mean else np.nan
    return np.where((x > 0) & (m > 0), conditional, prior)


# ---------------------------------------------------------------- the model as one object


@dataclass(frozen=True)
class LifetimeValueModel:
    purchases: BetaGeoParams
    spend: GammaGammaParams

    def score(self, summary: pd.DataFrame, horizon_weeks: float) -> pd.DataFrame:
        """Per customer: P(alive) (empty where churn cannot be identified), expected purchases
        and value over the horizon."""
        x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        purchases = expected_purchases(self.purchases, horizon_weeks, x, t_x, T)
        spend = expected_spend(self.spend, x, summary["monetary_value"].to_numpy(float))
        alive = probability_alive(self.purchases, x, t_x, T)
        if churn_identified(self.purchases) is not None:
            alive = np.full(len(x), np.nan)
        return pd.DataFrame({
            "probability_alive": alive,
            "expected_purchases": purchases,
            "expected_spend_per_purchase": spend,
            "expected_value": purchases * spend,
        }, index=summary.index)

    def params(self) -> dict[str, float]:
        """Numeric parameters for logging (the purchase model's variant is a parameter)."""
        return {**{f"purchases_{k}": v for k, v in self.purchases.as_dict().items()},
                "purchases_dropout_probability": self.purchases.dropout_probability,
                **{f"gamma_gamma_{k}": v for k, v in self.spend.as_dict().items()}}

    @property
    def purchase_model(self) -> str:
        return PURCHASE_MODELS[self.purchases.variant]


def fit_lifetime_value(summary: pd.DataFrame, variant: str | None = None) -> LifetimeValueModel:
    """The purchase model (`variant`, or the likelier of BG/NBD and MBG/NBD) and the spend
    model fitted on the same customers."""
    purchases = fit_bgnbd(summary, variant) if variant else fit_purchase_model(summary)
    return LifetimeValueModel(purchases, fit_gamma_gamma(summary))


# ---------------------------------------------------------------- holdout evaluation

MIN_HISTORY_DAYS = 84  # a 4-week holdout after 8 weeks of calibration at the least
MIN_REPEAT_BUYERS = 20


def not_trainable_reason(transactions: pd.DataFrame | None, calibration_end: pd.Timestamp,
                         history_days: int, repeat_buyers: int | None = None) -> str | None:
    """Why the history is too short or thin to fit and evaluate the model, or None.
    `repeat_buyers` (customers who bought again by `calibration_end`) when counted already,
    else from `transactions`."""
    if history_days < MIN_HISTORY_DAYS:
        return (f"{history_days} days of orders; the lifetime-value model needs at least "
                f"{MIN_HISTORY_DAYS} (8 weeks to fit, 4 to check the forecast)")
    repeat = (repeat_buyers if repeat_buyers is not None
              else int((rfm_summary(transactions, calibration_end)["frequency"] > 0).sum()))
    if repeat < MIN_REPEAT_BUYERS:
        return (f"{repeat} customers bought again before {calibration_end.date()}; the spend "
                f"model needs at least {MIN_REPEAT_BUYERS}")
    return None


# P(alive) is checked by decile: predicted vs actual share of customers who buy nothing in the
# holdout (the calibration part of the gate, ml/evaluation.py)
CALIBRATION_DECILES = 10


@dataclass(frozen=True)
class HoldoutReport:
    """How a model fitted up to `calibration_end` forecast the purchases of the holdout."""

    metrics: dict[str, float]
    by_frequency: pd.DataFrame  # per calibration frequency: customers, mean predicted, actual
    # per decile of P(alive) at the calibration end: customers, mean P(alive), predicted and
    # actual share of customers with no purchase in the holdout (empty: churn not identified)
    by_alive_decile: pd.DataFrame = field(default_factory=pd.DataFrame)


def evaluate_holdout(transactions: pd.DataFrame, calibration_end: pd.Timestamp,
                     holdout_end: pd.Timestamp,
                     variant: str | None = None) -> tuple[LifetimeValueModel, HoldoutReport]:
    """Fit on the calibration period, forecast the holdout's repeat purchases per customer, and
    compare with what happened and with the naive baseline (each customer's own past rate);
    check P(alive) by decile against who bought nothing."""
    summary = rfm_summary(transactions, calibration_end)
    model = fit_lifetime_value(summary, variant)
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
    by_decile = pd.DataFrame()
    if churn_identified(model.purchases) is None:
        by_decile = alive_calibration(model.purchases, summary, actual, weeks)
        gap = (by_decile["predicted_no_purchase"] - by_decile["actual_no_purchase"]).abs()
        metrics["holdout_no_purchase_mean_gap"] = float(gap.mean())
        metrics["holdout_no_purchase_max_gap"] = float(gap.max())
        # the same check of a P(alive) that says nothing: everyone gets the overall share
        overall = float((by_decile["predicted_no_purchase"] * by_decile["customers"]).sum()
                        / by_decile["customers"].sum())
        metrics["holdout_no_purchase_mean_gap_uninformed"] = float(
            (by_decile["actual_no_purchase"] - overall).abs().mean())
    else:  # no P(alive) to check; the gate's other parts still apply
        metrics["holdout_no_purchase_mean_gap"] = metrics["holdout_no_purchase_max_gap"] = 0.0
    metrics["holdout_churn_identified"] = float(churn_identified(model.purchases) is None)
    metrics["holdout_dropout_probability"] = model.purchases.dropout_probability
    return model, HoldoutReport(metrics, by_frequency, by_decile)


def alive_calibration(params: BetaGeoParams, summary: pd.DataFrame, actual: pd.Series,
                      weeks: float) -> pd.DataFrame:
    """Per decile of P(alive) (ties split by order): customers, mean P(alive), the predicted
    share with no purchase in the next `weeks` and the actual share (`actual`: purchases per
    customer in the holdout, same index as `summary`)."""
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    alive = pd.Series(probability_alive(params, x, t_x, T), index=summary.index)
    decile = pd.qcut(alive.rank(method="first"), CALIBRATION_DECILES, labels=False) + 1
    frame = pd.DataFrame({
        "decile": decile, "probability_alive": alive,
        "predicted_no_purchase": probability_no_purchase(params, weeks, x, t_x, T),
        "actual_no_purchase": (actual.to_numpy() == 0).astype(float)})
    return frame.groupby("decile").agg(
        customers=("probability_alive", "size"),
        probability_alive=("probability_alive", "mean"),
        predicted_no_purchase=("predicted_no_purchase", "mean"),
        actual_no_purchase=("actual_no_purchase", "mean"))


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
