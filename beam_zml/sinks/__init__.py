"""Where the dataset is written: the sharded writers of images/, records/, files/ and errors/
(`write_shards`), the manifest dataset.json that commits a run (`manifest`), and the preparation
of the output folder for a new run or a resumed one (`output`). Writes go through `beam_zml.storage`.
"""
