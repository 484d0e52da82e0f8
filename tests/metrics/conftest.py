import pytest


@pytest.fixture(scope="session")
def genzoo_cache(tmp_path_factory):
    """A temporary GENZOO_CACHE root for the whole session (classifiers go to its classifiers/)."""
    return tmp_path_factory.mktemp("genzoo_cache")


@pytest.fixture(scope="session")
def digits_classifier(genzoo_cache):
    """genzoo's default digits classifier, trained once per session (about 10 s on one core)."""
    from genzoo.metrics.classifier import get_classifier

    return get_classifier("digits", cache=genzoo_cache / "classifiers")
