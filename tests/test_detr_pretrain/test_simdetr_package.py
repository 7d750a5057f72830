# Copyright (c) mmselfdet contributors. All rights reserved.
"""SimDETR is one package (mmselfdet/simdetr/): the former import paths
re-export the same objects, registered names are unchanged, and
mmselfdet.engine does not import SimDETR."""


def test_old_import_paths_give_the_same_objects():
    import mmselfdet.detr_pretrain as old_pkg
    import mmselfdet.detr_pretrain.rounds as old_rounds
    import mmselfdet.engine.self_training as old_st
    import mmselfdet.models.proposers.feature_cluster as old_fc
    import mmselfdet.simdetr as new
    from mmselfdet.models.proposers import FeatureClusterProposer
    from mmselfdet.registry import HOOKS, MODELS
    assert old_pkg.cluster_features is new.cluster_features
    assert old_pkg.__all__ == new.__all__
    assert old_rounds.select_predictions is new.select_predictions
    assert old_fc.FeatureClusterProposer is new.FeatureClusterProposer
    assert FeatureClusterProposer is new.FeatureClusterProposer
    assert old_st.SelfTrainingHook is new.SelfTrainingHook
    # registry names unchanged, bound to the one class
    assert MODELS.get('FeatureClusterProposer') is new.FeatureClusterProposer
    # the removed hook stays registered only to raise its message naming
    # SelfTrainingLoop (test_self_training_recluster.py)
    assert HOOKS.get('SelfTrainingHook') is new.SelfTrainingHook


def test_engine_does_not_import_simdetr():
    """No module of mmselfdet/engine/ imports SimDETR (the re-export shim
    self_training.py is imported by nobody inside engine)."""
    import ast
    import pathlib

    import mmselfdet.engine as engine
    found = []
    for path in pathlib.Path(engine.__file__).parent.rglob('*.py'):
        if path.name == 'self_training.py':
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ''] + [a.name for a in node.names]
                     if isinstance(node, ast.ImportFrom) else
                     [a.name for a in node.names]
                     if isinstance(node, ast.Import) else [])
            if any(k in n for n in names
                   for k in ('simdetr', 'detr_pretrain', 'self_training')):
                found.append(f'{path.name}: {names}')
    assert found == []
