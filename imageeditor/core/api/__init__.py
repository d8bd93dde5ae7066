"""The protobuf face of the core: conversion between the domain and the generated messages,
and the mapping of the error tree to `google.rpc.Status`."""
