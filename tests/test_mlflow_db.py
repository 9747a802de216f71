"""MLflow's tracking database is created whole or not at all (dagster_project/resources.py)."""

from __future__ import annotations

import sqlite3

from dagster_project.resources import MlflowResource


def test_the_tracking_database_appears_whole_and_a_killed_creation_leaves_nothing(tmp_path):
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    # what a creation killed part-way left: a database under its temporary name, mid-migration
    left = db.parent / ".mlflow.db.999999999.init"
    with sqlite3.connect(left) as con:
        con.execute("create table _alembic_tmp_datasets (dataset_uuid varchar(36))")
    resource = MlflowResource(tracking_uri=f"sqlite:///{db}",
                              artifact_root=str(tmp_path / "mlflow" / "artifacts"))
    experiment = resource.experiment_id("segmenta_test")

    assert db.exists() and not left.exists()
    assert list(db.parent.glob(".*.init")) == []
    with sqlite3.connect(db) as con:
        tables = {name for (name,) in con.execute("select name from sqlite_master "
                                                  "where type = 'table'")}
    assert {"experiments", "runs", "registered_models", "model_versions",
            "alembic_version"} <= tables
    assert not any(name.startswith("_alembic_tmp") for name in tables)
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    client.create_registered_model("segmenta_model")
    assert [m.name for m in client.search_registered_models()] == ["segmenta_model"]
    assert client.get_experiment(experiment).name == "segmenta_test"
