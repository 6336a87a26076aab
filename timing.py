import socket,time,sys,statistics
port=int(sys.argv[1])
def one(user,pw,src):
    s=socket.create_connection(('127.0.0.1',port),source_address=(src,0),timeout=10)
    f=s.makefile('rb'); f.readline()
    s.sendall(f'USER {user}\r\n'.encode()); f.readline()
    t=time.perf_counter(); s.sendall(f'PASS {pw}\r\n'.encode()); r=f.readline(); d=time.perf_counter()-t
    s.close(); return d,r[:3]
res={'known':[],'unknown':[]}
for i in range(8):
    for kind,u in (('known','alice'),('unknown','bob%d'%i)):
        d,r=one(u,'wrong','127.9.%d.%d'%(i, 1 if kind=='known' else 2))
        res[kind].append(d)
for k,v in res.items(): print(k, 'median ms', round(statistics.median(v)*1000,2), 'min',round(min(v)*1000,2),'max',round(max(v)*1000,2))
print('good', one('alice','secretpw','127.9.99.1'))
