"""Vision Lab's engine: every computation the pages show, with no UI code.

One module a topic: ``intake`` (bytes -> RGB array), ``models`` (the registry of
pretrained models and data sets), ``samples`` (built-in photos), ``detections``
(the one structure every detector returns), and a module per page topic.
Nothing here imports streamlit.
"""
