"""Several os-onboard replicas sharing the managed hosts, through tooz.

tooz is OpenStack's coordination library (group membership, locks, hash
rings over a backend such as etcd, ZooKeeper or Redis); os-onboard uses it
on etcd (``etcd3+http://...``, tooz's etcd3gw driver: etcd's JSON gateway,
no gRPC). Nothing here is home-made consensus:

* :mod:`.ring` - the registered hosts partitioned among the live members by
  consistent hashing (tooz's HashRing), so a join or a leave moves only the
  hosts of that member's arcs;
* :mod:`.service` - one replica's membership: join the group with a lease
  that etcd expires when the replica stops beating (kill -9 included), look
  at the members every heartbeat, hold the hosts the ring gives it and
  publish them (the member's capabilities), and tooz locks for work that must
  not run twice (an apply per plan/VM). ``os-onboard workers`` and
  ``/v1/workers`` read the same group.
"""
