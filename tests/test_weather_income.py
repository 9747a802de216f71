"""The weather feed and the income band: the sample store's weather and demand, the landing
contract, the Open-Meteo mapping, and income bands by persona. The marts that use them (weather
at the customer's city, the postal-area fallback, a rule that changes with the weather) are
checked on a store refreshed day by day in test_segment_history.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.warehouse import Warehouse
from generator import generate
from generator.personas import P
from generator.weather import simulate_weather
from generator.world import INCOME_BANDS, World
from ingest import landing
from ingest.importer import MappingError, import_file

MAPPING = Path(__file__).resolve().parent.parent / "mappings" / "open_meteo_daily.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample store's landing files: 2,000 customers over 120 days."""
    home = tmp_path_factory.mktemp("weather_store")
    generate(home / "landing", home / "generator", customers=2000, days=120, progress=False)
    return home


def test_each_city_gets_its_climate_and_its_season():
    weather = simulate_weather(dt.date(2026, 1, 1), 365, seed=42)
    row = {city: i for i, (city, _) in enumerate(weather.cities)}
    wet = weather.is_rainy.mean(axis=1)
    assert wet[row["Bergen"]] > 2 * wet[row["Sevilla"]]  # the rainiest city, and a dry one
    assert wet[row["Los Angeles"]] < min(0.15, wet[row["London"]] / 2)  # about 35 days a year
    january, july = slice(0, 31), slice(181, 212)
    for city, summer in (("Madrid", july), ("Sydney", january)):  # hemispheres
        winter = january if summer == july else july
        assert weather.temp_max[row[city], summer].mean() > \
            weather.temp_max[row[city], winter].mean() + 8, city
    assert (weather.temp_min <= weather.temp_max).all()
    assert ((weather.precipitation >= 1) == weather.is_rainy).all()
    assert set(np.unique(weather.condition[weather.is_rainy])) <= {"drizzle", "rain", "storm",
                                                                    "snow"}


def test_the_weather_feed_loads_with_forecasts_and_observations(store, tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    report = landing.load_all_days(warehouse, store / "landing", "weather")
    assert report.totals["rows_quarantined"] == 0 and report.reconciles
    rows = warehouse.query_df("select * from raw.weather")
    days = sorted(rows["_partition_date"].unique())
    assert len(days) == 120
    # each delivery: every city's observed day, and forecasts of the two days after it
    first = rows[rows["_partition_date"] == days[0]]
    assert set(first["kind"]) == {"observed", "forecast"}
    assert first.groupby("kind").size().to_dict() == {"observed": 33, "forecast": 66}
    assert first["date"].nunique() == 3
    # a day is forecast twice and observed once, each issue loaded
    again = rows[(rows["date"] == days[5]) & (rows["city"] == "Madrid")]
    assert sorted(again["kind"]) == ["forecast", "forecast", "observed"]
    assert again["issued_at"].nunique() == 3


def _rain_product_sales(home: Path) -> pd.DataFrame:
    """Raincoat and umbrella units sold per customer and city-day, rainy days against dry."""
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(f"""
            with products as (
                select product_id, subcategory
                from read_csv('{home}/landing/products/*/*.csv', all_varchar = true)
            ),
            customers as (
                select customer_id, any_value(city) as city, any_value(country) as country
                from read_csv('{home}/landing/customers/*/*.csv', all_varchar = true)
                where city <> '' group by 1
            ),
            weather as (
                select cast(date as date) as day, city, country,
                       cast(precipitation_mm as double) >= 1 as is_rainy
                from read_csv('{home}/landing/weather/*/*.csv', all_varchar = true)
                where kind = 'observed'
            ),
            lines as (
                select customer_id, cast(cast(ordered_at as timestamptz) as date) as day,
                       product_id, cast(quantity as integer) as quantity
                from read_csv('{home}/landing/orders/*/*.csv', all_varchar = true)
                where status = 'completed' and try_cast(quantity as integer) > 0
                  and try_cast(ordered_at as timestamptz) is not null
            ),
            per_city_day as (
                select weather.day, weather.city, weather.country, weather.is_rainy,
                       count(distinct customers.customer_id) as n_customers,
                       coalesce(sum(lines.quantity) filter (
                           where products.subcategory in ('Raincoats', 'Umbrellas')), 0) as units
                from weather
                inner join customers using (city, country)
                left join lines
                    on lines.customer_id = customers.customer_id and lines.day = weather.day
                left join products using (product_id)
                group by all
            )
            select is_rainy, count(*) as city_days, sum(units) as units,
                   sum(units) / sum(n_customers) as units_per_customer_day
            from per_city_day group by is_rainy order by is_rainy
        """).df().set_index("is_rainy")


def test_raincoats_sell_more_on_rainy_days(store):
    sales = _rain_product_sales(store)
    dry, rainy = sales.loc[False], sales.loc[True]
    assert dry["city_days"] > 500 and rainy["city_days"] > 500  # both kinds of day, often
    print(f"raincoats and umbrellas per customer and day: rainy "
          f"{rainy['units_per_customer_day']:.5f}, dry {dry['units_per_customer_day']:.5f}")
    assert rainy["units_per_customer_day"] > 1.5 * dry["units_per_customer_day"]


def test_income_bands_follow_the_personas_and_some_profiles_leave_them_out():
    world = World(20_000, dt.date(2026, 1, 1), 30, seed=7)
    known = world.income >= 0
    assert 0.25 < (~known).mean() < 0.35
    mean_band = {name: world.income[known & (world.persona == P[name])].mean()
                 for name in ("loyal_high_value", "bargain_hunter")}
    assert mean_band["loyal_high_value"] > mean_band["bargain_hunter"] + 1.5
    profiles = world.profiles(np.arange(200), np.full(200, np.datetime64("2026-01-01T00:00")))
    assert set(profiles["income_band"]) <= {*INCOME_BANDS, ""}
    erased = world.profiles(np.arange(5), np.full(5, np.datetime64("2026-01-01T00:00")), True)
    assert (erased["income_band"] == "").all()  # an erasure request carries no band


def _open_meteo(path: Path, rows: list[str]) -> Path:
    """A file as Open-Meteo's daily CSV download writes it: coordinates, a blank line, data."""
    path.write_text(
        "latitude,longitude,elevation,utc_offset_seconds,timezone,timezone_abbreviation\n"
        "40.4165,-3.7026,667.0,3600,Europe/Madrid,GMT+1\n\n"
        "time,weather_code (wmo code),temperature_2m_max (°C),temperature_2m_min (°C),"
        "precipitation_sum (mm)\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_an_open_meteo_export_imports_and_loads(tmp_path):
    source = _open_meteo(tmp_path / "madrid.csv", [
        "2026-10-29,3,19.8,9.1,0.00", "2026-10-30,61,16.2,10.4,6.30",
        "2026-10-31,95,15.0,8.7,21.5", "2026-11-01,123,14.0,8.0,0.00",
        "2026-11-02,3,75.2,60.8,0.00"])  # exported in Fahrenheit
    home = tmp_path / "home"
    report = import_file(MAPPING, source, home / "landing", {"city": "Madrid", "country": "ES"})
    assert (report.source_rows, report.written_rows, report.days) == (5, 5, 5)
    warehouse = Warehouse(home / "warehouse.duckdb")
    loaded = landing.load_all_days(warehouse, home / "landing", "weather")
    rows = warehouse.query_df("select date, condition, precipitation_mm, city, country, kind "
                              "from raw.weather order by date")
    assert list(rows["condition"]) == ["cloudy", "rain", "storm"]
    assert list(rows["precipitation_mm"]) == [0.0, 6.3, 21.5]
    assert set(rows["city"]) == {"Madrid"} and set(rows["kind"]) == {"observed"}
    # a code the mapping does not know (123) is quarantined with its reason, not guessed
    # (and a day in Fahrenheit, with how to convert it)
    assert dict(loaded.reasons) == {"invalid_value": 2}
    details = warehouse.query_df("select detail from quarantine.weather order by _source_file")
    assert details["detail"][0].startswith("condition is not one of")
    assert "temp_max_c > 60" in details["detail"][1]
    assert "from Fahrenheit, (F - 32) / 1.8" in details["detail"][1]


def test_an_open_meteo_import_without_a_city_says_how_to_give_one(tmp_path):
    source = _open_meteo(tmp_path / "x.csv", ["2026-10-29,3,19.8,9.1,0.00"])
    with pytest.raises(MappingError, match="required column city is not mapped.*--set"):
        import_file(MAPPING, source, tmp_path / "landing")


def test_a_forecast_imports_beside_the_observations_of_the_same_days(tmp_path):
    """The README's forecast command: every row lands in the folder of the day it was issued,
    and loads beside the observed days it overlaps (the key includes the kind)."""
    landing_dir = tmp_path / "landing"
    observed = _open_meteo(tmp_path / "madrid.csv", [
        "2026-10-30,61,16.2,10.4,6.30", "2026-10-31,3,15.0,8.7,0.00"])
    import_file(MAPPING, observed, landing_dir, {"city": "Madrid", "country": "ES"})
    forecast = _open_meteo(tmp_path / "madrid_forecast.csv", [
        "2026-10-31,61,14.0,9.0,3.0", "2026-11-01,95,13.0,8.0,12.0", "2026-11-02,0,15.0,7.0,0"])
    report = import_file(MAPPING, forecast, landing_dir, {
        "city": "Madrid", "country": "ES", "kind": "forecast",
        "issued_at": "2026-10-31T06:00:00Z"})
    assert (report.days, report.first_day, report.last_day) == (1, "2026-10-31", "2026-10-31")
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    loaded = landing.load_all_days(warehouse, landing_dir, "weather")
    assert loaded.totals["rows_quarantined"] == 0 and loaded.totals["rows_loaded"] == 5
    kinds = warehouse.query_df("select kind, count(*) as n from raw.weather group by 1")
    assert dict(zip(kinds["kind"], kinds["n"], strict=True)) == {"observed": 2, "forecast": 3}
